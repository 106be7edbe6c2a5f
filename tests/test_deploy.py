"""Bitstream collection: files copied with hashes and a manifest (with stand-in vendor outputs)."""

import hashlib
import json

import numpy as np
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


def test_deploy_takes_a_matching_bitstream_and_refuses_a_foreign_one(tmp_path, capsys):
    from driver import Accelerator
    from driver.iospec import check_manifest, load_spec
    from driver_nets import NETS, build_and_deploy, export
    from hw_gen.cli import main

    model = export(NETS["two_bit"](), (1, 3, 16, 16), tmp_path / "model.onnx")
    build_and_deploy(model, tmp_path)
    out = tmp_path / "build"
    vendor = out / "vendor" / "bitfile"
    vendor.mkdir(parents=True)
    (vendor / "finn-accel.bit").write_bytes(b"\x00\x09\x0f\xf0 a bitfile")
    (vendor / "finn-accel.hwh").write_text("<EDKSYSTEM/>")
    folder = collect_bitstream(out, model, "Pynq-Z2", 10.0, dest_root=tmp_path / "bitstreams")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [p["dma"] for p in manifest["io"]["outputs"]] == ["odma0", "odma1"]
    assert main(["deploy", str(out), "-o", str(tmp_path / "pkg"), "--bitstream", str(folder)]) == 0
    pkg = tmp_path / "pkg"
    assert (pkg / "bitstream" / "model.bit").read_bytes() == b"\x00\x09\x0f\xf0 a bitfile"
    check_manifest(load_spec(pkg), pkg / "bitstream" / "manifest.json")
    assert Accelerator(pkg, backend="sim").execute(
        np.zeros((1, 16, 16, 3), np.uint8)).labels.shape == (1, 16, 16)
    # a bitstream of another model is refused, naming the manifest
    other = export(NETS["binary_padded"](), (1, 3, 16, 16), tmp_path / "other.onnx")
    foreign = collect_bitstream(out, other, "Pynq-Z2", 10.0, dest_root=tmp_path / "bitstreams")
    capsys.readouterr()
    assert main(["deploy", str(out), "-o", str(tmp_path / "pkg2"), "--bitstream",
                 str(foreign)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "built from model" in err and "manifest.json" in err
    assert not (tmp_path / "pkg2").exists() and not (tmp_path / "pkg2.partial").exists()
    assert main(["deploy", str(tmp_path), "-o", str(tmp_path / "pkg3")]) == 2
    assert "not a build folder" in capsys.readouterr().err
