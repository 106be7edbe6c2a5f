"""The driver on the simulated backend, against the model run by qonnx: a binary network, one
with 2-bit activations and the demo network; packing lane order; refusals; the shell entry."""

import json
import subprocess
import sys

import numpy as np
import pytest

from driver import Accelerator, DriverError
from driver.buffers import from_dma_bytes, to_dma_bytes
from driver.iospec import Port
from board.reference import expected_outputs
from driver_nets import NETS, build_and_deploy, export, qonnx_logits

SIZE = 16


@pytest.fixture(scope="module", params=sorted(NETS))
def package(request, tmp_path_factory):
    work = tmp_path_factory.mktemp(request.param)
    model = export(NETS[request.param](), (1, 3, SIZE, SIZE), work / "model.onnx")
    return model, build_and_deploy(model, work)


def _images(n, seed=0, size=SIZE):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3)).astype(np.uint8)


def _check_against_model(acc, model, images):
    out = acc.execute(images)
    ref = qonnx_logits(model, images)
    # the integers first: the model's logits undone by the recorded scale and bias
    expected_scores, expected_labels = expected_outputs(ref, out.scale, out.bias)
    assert np.array_equal(np.transpose(out.scores, out.perm), expected_scores)
    assert np.allclose(out.logits(), ref, rtol=0, atol=1e-5)
    assert np.array_equal(out.predicted(), expected_labels)
    return out


def test_sim_backend_equals_the_model(package):
    model, pkg = package
    acc = Accelerator(pkg, backend="sim")
    out = _check_against_model(acc, model, _images(3))
    assert out.labels is not None and out.labels.shape == (3, SIZE, SIZE)


def test_package_contents(package):
    _, pkg = package
    io = json.loads((pkg / "io.json").read_text())
    port = io["inputs"][0]
    assert port["shape"] == [1, SIZE, SIZE, 3] and port["dtype"] == "UINT8"
    assert port["quant"]["bits"] == 8 and not port["quant"]["signed"]
    assert {o["kind"] for o in io["outputs"]} == {"labels", "scores"}
    for sub in ("driver/accelerator.py", "sim/packing.py", "notebooks/demo.ipynb",
                "samples.npz", "accelerator.sim.json", "README.md"):
        assert (pkg / sub).exists(), sub
    assert not (pkg / "bitstream").exists()
    assert np.load(pkg / "samples.npz")["images"].shape == (6, SIZE, SIZE, 3)


def test_refusals_are_one_line(package):
    _, pkg = package
    acc = Accelerator(pkg, backend="sim")
    with pytest.raises(DriverError, match=r"shape \(2, 8, 16, 3\).*\(N, 16, 16, 3\)"):
        acc.execute(np.zeros((2, 8, SIZE, 3), np.uint8))
    with pytest.raises(DriverError, match="dtype float32.*uint8"):
        acc.execute(np.zeros((2, SIZE, SIZE, 3), np.float32))
    with pytest.raises(DriverError, match="backend 'fpga'"):
        Accelerator(pkg, backend="fpga")
    with pytest.raises(DriverError, match="without a bitstream"):
        Accelerator(pkg, backend="pynq")


def test_shell_entry(package, tmp_path):
    model, pkg = package
    images = _images(2, seed=5)
    np.save(tmp_path / "x.npy", images)
    run = subprocess.run([sys.executable, "-m", "driver", str(pkg), "--input",
                          str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"),
                          "--backend", "sim"], capture_output=True, text=True, cwd=pkg)
    assert run.returncode == 0, run.stderr
    labels = np.load(tmp_path / "y.npy")
    out = Accelerator(pkg, backend="sim").execute(images)
    assert np.array_equal(labels, expected_outputs(qonnx_logits(model, images), out.scale,
                                                   out.bias)[1])
    np.save(tmp_path / "bad.npy", images.astype(np.int16))
    run = subprocess.run([sys.executable, "-m", "driver", str(pkg), "--input",
                          str(tmp_path / "bad.npy"), "--output", str(tmp_path / "z.npy"),
                          "--backend", "sim"], capture_output=True, text=True, cwd=pkg)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "dtype int16" in run.stderr
    assert not (tmp_path / "z.npy").exists()


def _port(dtype, shape, folded, packed):
    return Port("t", "idma0", dtype, shape, folded, packed, {})


def test_dma_bytes_lane_order_is_lsb_first():
    # two lanes of 4-bit elements per word: element 0 in the low nibble of the first byte
    port = _port("UINT4", (1, 1, 4), (1, 2, 2), (1, 2, 1))
    raw = to_dma_bytes(np.array([[[1, 2, 3, 4]]]), port)
    assert raw.tolist() == [[0x21, 0x43]]
    # a 12-bit word of three lanes, little-endian bytes: 0x321 -> 21 03
    port = _port("UINT4", (1, 3), (1, 1, 3), (1, 1, 2))
    assert to_dma_bytes(np.array([[1, 2, 3]]), port).tolist() == [[0x21, 0x03]]
    # signed and bipolar lanes
    port = _port("INT2", (1, 4), (1, 1, 4), (1, 1, 1))
    assert to_dma_bytes(np.array([[-1, 0, 1, -2]]), port).tolist() == [[0b10010011]]
    port = _port("BIPOLAR", (1, 3), (1, 1, 3), (1, 1, 1))
    assert to_dma_bytes(np.array([[1, -1, -1]]), port).tolist() == [[0b001]]


@pytest.mark.parametrize("dtype", ["BIPOLAR", "BINARY", "INT2", "UINT2", "INT4", "UINT4", "INT5",
                                   "UINT8", "INT8", "INT12", "UINT16", "INT24", "INT32"])
@pytest.mark.parametrize("pe", [1, 2, 3, 6])
def test_dma_bytes_round_trip(dtype, pe):
    from sim.datatypes import dtype as finn_dtype
    from sim.packing import DRIVER_PACKING, pack_bytes

    dt = finn_dtype(dtype)
    rng = np.random.default_rng(pe)
    shape = (2, 3, 5, 6)  # asymmetric: every lane gets a different value
    if dtype == "BIPOLAR":
        values = rng.integers(0, 2, shape) * 2 - 1
    else:
        values = rng.integers(int(dt.min), int(dt.max) + 1, shape)
    folded = (1, 3, 5, 6 // pe, pe)
    packed = pack_bytes(np.zeros(folded, np.int64) + (1 if dtype == "BIPOLAR" else 0), dt,
                        **DRIVER_PACKING).shape
    port = _port(dtype, (1, 3, 5, 6), folded, packed)
    raw = to_dma_bytes(values, port)
    assert raw.shape == (2, int(np.prod(packed[1:])))
    assert np.array_equal(from_dma_bytes(raw, port), values)


def test_demo_network_on_the_sim_backend(tmp_path):
    from driver_nets import DEMO_SIZE, demo_net

    model = export(demo_net(), (1, 3, DEMO_SIZE, DEMO_SIZE), tmp_path / "demo.onnx")
    acc = Accelerator(build_and_deploy(model, tmp_path), backend="sim")
    out = _check_against_model(acc, model, _images(2, seed=7, size=DEMO_SIZE))
    assert out.predicted().shape == (2, DEMO_SIZE, DEMO_SIZE)
