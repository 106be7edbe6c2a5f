"""Runtime-writable weights: a package built with ``--runtime-weights`` from model A runs a
retrained model B of the same architecture after ``hw-gen weights`` + ``load_weights``, its
output equal to qonnx's run of B; refusals name the layer."""

import json
import subprocess
import sys

import numpy as np
import pytest

from board.reference import expected_outputs
from driver import Accelerator, DriverError
from driver_nets import RUNTIME_WEIGHTS_SIZE as SIZE
from driver_nets import build_and_deploy, export, qonnx_logits
from driver_nets import retrained_two_bit as _net
from hw_gen.errors import HwGenError
from hw_gen.runtime_weights import export_weights

SHAPE = (1, 3, SIZE, SIZE)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("rtw")
    model_a = export(_net(0), SHAPE, work / "a.onnx")
    return work, model_a, build_and_deploy(model_a, work, runtime_weights=True)


def _images(n=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3)).astype(np.uint8)


def _assert_runs(acc, model, images):
    out = acc.execute(images)
    scores, labels = expected_outputs(qonnx_logits(model, images), out.scale, out.bias)
    assert np.array_equal(np.transpose(out.scores, out.perm), scores)
    assert np.array_equal(out.labels, labels)


def test_package_records_writable_layers(built):
    _, _, pkg = built
    layers = json.loads((pkg / "io.json").read_text())["runtime_weights"]
    assert [layer["kind"] for layer in layers] == ["weights"] * 3
    assert [layer["axilite"] for layer in layers] == [
        f"StreamingDataflowPartition_1/s_axilite_{i}" for i in range(3)]
    assert (pkg / "accelerator.onnx").exists()


def test_retrained_weights_reproduce_model_b(built):
    work, model_a, pkg = built
    model_b = export(_net(7), SHAPE, work / "b.onnx")
    weights = export_weights(model_b, pkg, work / "b_weights.npz")
    acc = Accelerator(pkg, backend="sim")
    images = _images()
    _assert_runs(acc, model_a, images)
    assert not np.array_equal(qonnx_logits(model_a, images), qonnx_logits(model_b, images))
    acc.load_weights(weights)
    _assert_runs(acc, model_b, images)
    # the AXI-lite words: FINN's layout of 32-bit words, one per weight-memory line here
    with np.load(weights) as w:
        layer = json.loads((pkg / "io.json").read_text())["runtime_weights"][0]
        assert w[layer["name"] + ".axilite"].dtype == np.uint32
        assert w[layer["name"]].shape == tuple(layer["shape"])


def _scale_bias(pkg):
    port = next(p for p in json.loads((pkg / "io.json").read_text())["outputs"]
                if p["kind"] == "scores")
    return np.asarray(port["scale"], np.float32), np.asarray(port["bias"], np.float32)


def test_refusals_name_the_layer(built):
    work, _, pkg = built
    other_bn = export(_net(7, bn_seed=11), SHAPE, work / "bn.onnx")
    with pytest.raises(HwGenError, match=r"layer MVAU_hls_\d .*thresholds absorbed"):
        export_weights(other_bn, pkg, work / "bn.npz")
    wider = export(_net(0, channels=6), SHAPE, work / "wide.onnx")
    with pytest.raises(HwGenError, match="another architecture.*MVAU_hls_0"):
        export_weights(wider, pkg, work / "wide.npz")
    assert not (work / "bn.npz").exists() and not (work / "wide.npz").exists()


def test_driver_refuses_foreign_weights(built, tmp_path):
    work, _, pkg = built
    acc = Accelerator(pkg, backend="sim")
    bad = tmp_path / "w.npz"
    np.savez(bad, __package__=np.array("0" * 64))
    with pytest.raises(DriverError, match="made for the package of model"):
        acc.load_weights(bad)
    with pytest.raises(DriverError, match="no such weights file"):
        acc.load_weights(tmp_path / "missing.npz")


def test_shell_entries(built, tmp_path):
    work, model_a, pkg = built
    model_b = export(_net(7), SHAPE, tmp_path / "b.onnx")
    run = subprocess.run([sys.executable, "-m", "hw_gen.cli", "weights", str(model_b),
                          "--package", str(pkg), "-o", str(tmp_path / "b.npz")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    images = _images(2, seed=4)
    np.save(tmp_path / "x.npy", images)
    run = subprocess.run([sys.executable, "-m", "driver", str(pkg), "--input",
                          str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"),
                          "--backend", "sim", "--weights", str(tmp_path / "b.npz")],
                         capture_output=True, text=True, cwd=pkg)
    assert run.returncode == 0, run.stderr
    _, labels = expected_outputs(qonnx_logits(model_b, images), *_scale_bias(pkg))
    assert np.array_equal(np.load(tmp_path / "y.npy"), labels)
    run = subprocess.run([sys.executable, "-m", "hw_gen.cli", "weights", str(model_a),
                          "--package", str(work / "nothing"), "-o", str(tmp_path / "w.npz")],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"hw-gen: error: --package {work / 'nothing'}: no io.json (not a deploy package)"]
    run = subprocess.run([sys.executable, "-m", "hw_gen.cli", "weights", str(model_a),
                          "--package", str(pkg), "-o", str(tmp_path)],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"hw-gen: error: --out {tmp_path}: give a file name ending in .npz"]
