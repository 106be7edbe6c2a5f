"""Bitstream collection: files copied with hashes and a manifest (with stand-in vendor outputs)."""

import hashlib
import json

import pytest

from hw_gen.deploy import collect_bitstream
from hw_gen.errors import HwGenError


def test_collect_bitstream_writes_manifest(tmp_path):
    out = tmp_path / "out"
    (out / "vendor" / "bitfile").mkdir(parents=True)
    (out / "vendor" / "bitfile" / "finn-accel.bit").write_bytes(b"\x00bit" * 10)
    (out / "vendor" / "bitfile" / "finn-accel.hwh").write_text("<hwh/>")
    (out / "layers.json").write_text(json.dumps({"layers": [{"name": "MVAU_0", "pe": 2, "simd": 4}]}))
    model = tmp_path / "demo.onnx"
    model.write_bytes(b"onnx")
    dest = collect_bitstream(out, model, "Pynq-Z2", 10.0, dest_root=tmp_path / "bitstreams")
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["board"] == "Pynq-Z2" and manifest["clock_ns"] == 10.0
    assert manifest["model_sha256"] == hashlib.sha256(b"onnx").hexdigest()
    assert manifest["files"]["demo.bit"] == hashlib.sha256(b"\x00bit" * 10).hexdigest()
    assert manifest["folding"] == {"MVAU_0": {"PE": 2, "SIMD": 4}}
    assert (dest / "demo.hwh").read_text() == "<hwh/>"


def test_missing_vendor_outputs_are_reported(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"x")
    with pytest.raises(HwGenError, match="no .bit/.hwh"):
        collect_bitstream(tmp_path, tmp_path / "m.onnx", "Pynq-Z2", 10.0, dest_root=tmp_path)
