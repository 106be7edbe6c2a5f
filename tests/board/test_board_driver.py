"""The driver's pynq backend against a fake device (numpy memory, IODMA registers, the
accelerator through sim/), in the board-like environment; packages from make_packages.py.

The ``.hwh`` is a fixture we write (``hwh_fixture.py``), the ``.bit`` a marked test file."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pynq
import pytest

from driver import Accelerator, DriverError
from driver.iospec import load_spec
from driver.sim_backend import SimBackend
from fake_device import FakeDevice
from hwh_fixture import write_hwh
from reference import expected_outputs

PACKAGES = Path(os.environ.get("HWGEN_BOARD_PACKAGES", "build/board-packages"))
NETS = ("binary_padded", "two_bit", "demo")


def test_environment_is_board_like():
    assert pynq.__version__ == "4.0.0"
    assert np.__version__.startswith("1.")
    for heavy in ("torch", "qonnx", "finn", "hw_gen", "onnx"):
        assert heavy not in __import__("sys").modules


def _with_bitstream(name: str, tmp_path: Path, edit=None) -> Path:
    src = PACKAGES / name / "pkg"
    if not src.exists():
        pytest.fail(f"{src} missing: run `python tests/board/make_packages.py {PACKAGES}` "
                    "in the main environment first (make board-test does)")
    pkg = tmp_path / name
    shutil.copytree(src, pkg)
    spec = load_spec(pkg)
    folder = pkg / "bitstream"
    folder.mkdir()
    (folder / "accel.bit").write_bytes(b"test fixture, not a bitstream")
    write_hwh(folder / "accel.hwh", [p.dma for p in spec.inputs + spec.outputs])
    manifest = {"model_sha256": spec.model_sha256,
                "io": {"inputs": [p.describe() for p in spec.inputs],
                       "outputs": [p.describe() for p in spec.outputs]}}
    if edit:
        edit(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return pkg


def _device(pkg: Path, stall: bool = False) -> FakeDevice:
    sim_backend = SimBackend(pkg, load_spec(pkg))
    return FakeDevice(str(pkg / "bitstream" / "accel.hwh"),
                      lambda packed: sim_backend.run([packed], 1.0), stall=stall)


@pytest.mark.parametrize("name", NETS)
def test_pynq_backend_equals_the_model(name, tmp_path):
    pkg = _with_bitstream(name, tmp_path)
    device = _device(pkg)
    acc = Accelerator(pkg, backend="pynq", device=device)
    ref = np.load(PACKAGES / name / "reference.npz")
    out = acc.execute(ref["images"])
    assert device.downloads and device.runs == 1
    expected_scores, expected_labels = expected_outputs(ref["logits"], out.scale, out.bias)
    assert np.array_equal(np.transpose(out.scores, out.perm), expected_scores)
    assert np.array_equal(out.predicted(), expected_labels)
    sim_out = Accelerator(pkg, backend="sim").execute(ref["images"])
    assert np.array_equal(sim_out.scores, out.scores)


def test_throughput_test_runs(tmp_path):
    pkg = _with_bitstream("binary_padded", tmp_path)
    result = Accelerator(pkg, backend="pynq", device=_device(pkg)).throughput_test(batch=2)
    assert result["backend"] == "pynq" and result["accelerator_frames_per_s"] > 0


def test_dma_that_never_completes_times_out(tmp_path):
    pkg = _with_bitstream("binary_padded", tmp_path)
    acc = Accelerator(pkg, backend="pynq", device=_device(pkg, stall=True), timeout_s=0.2)
    images = np.load(PACKAGES / "binary_padded" / "reference.npz")["images"]
    t0 = time.monotonic()
    with pytest.raises(DriverError, match=r"output DMA odma0.* did not complete within 0.2 s"):
        acc.execute(images)
    assert time.monotonic() - t0 < 5.0
    with pytest.raises(DriverError, match="odma0 is busy"):
        acc.execute(images)


def test_mismatched_manifest_is_refused(tmp_path):
    def wrong_fold(manifest):
        manifest["io"]["inputs"][0]["folded_shape"][-1] += 1

    pkg = _with_bitstream("binary_padded", tmp_path, wrong_fold)
    with pytest.raises(DriverError, match="inputs port global_in: folded_shape"):
        Accelerator(pkg, backend="pynq", device=_device(pkg))

    def other_model(manifest):
        manifest["model_sha256"] = "0" * 64

    pkg = _with_bitstream("two_bit", tmp_path, other_model)
    with pytest.raises(DriverError, match="built from model '0000"):
        Accelerator(pkg, backend="pynq", device=_device(pkg))


def test_wrong_shape_and_dtype(tmp_path):
    pkg = _with_bitstream("two_bit", tmp_path)
    acc = Accelerator(pkg, backend="pynq", device=_device(pkg))
    with pytest.raises(DriverError, match="shape"):
        acc.execute(np.zeros((1, 3, 16, 16), np.uint8))
    with pytest.raises(DriverError, match="dtype int32"):
        acc.execute(np.zeros((1, 16, 16, 3), np.int32))
