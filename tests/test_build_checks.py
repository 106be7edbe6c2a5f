"""Every build checks itself against the model: the threeway build step, the sim step against
the model's outputs, the default input, and the lowering defects the check found (a unit
batch norm, Quant bit widths, a broadcasting residual add)."""

import contextlib
import json
import re

import numpy as np
import pytest
import torch
from brevitas.export import export_qonnx
from qonnx.core.modelwrapper import ModelWrapper

from brevitas_models.stock_nets import TFCStyle
from hw_gen.build import build
from hw_gen.cli import main
from hw_gen.errors import HwGenError
from hw_gen.lowering import pipeline
from hw_gen.simrun import default_input, model_input_graph
from lowering_nets import BroadcastAddNet, PaddedNet, TieNet, pixels, randomize_bn


def export(model, x, path):
    export_qonnx(model, x[:1], str(path), dynamo=False)
    return path


@pytest.fixture(scope="module")
def padded_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("padded") / "m.onnx"
    return export(randomize_bn(PaddedNet("minus1"), seed=1), pixels((1, 3, 8, 8)), path)


def unit_bn_onnx(path):
    """TieNet's first batch norm keeps unit statistics and eps 1e-5: a Mul(0.999995)."""
    torch.manual_seed(5)
    return export(TieNet().eval(), pixels((1, 3, 8, 8)), path)


def test_default_input_is_pixels_for_an_8bit_input(padded_onnx):
    x = default_input(model_input_graph(padded_onnx))
    assert x.shape == (1, 3, 8, 8)
    k = x * 255
    assert np.array_equal(k, np.rint(k)) and k.min() >= 0 and k.max() <= 255


def test_build_without_input_on_a_float_input_model(tmp_path):
    path = export(TFCStyle(width=16).eval(), torch.rand(1, 1, 28, 28), tmp_path / "tfc.onnx")
    result = build(path, tmp_path / "out", stop_after="sim")
    assert result.passed, result.summary()
    assert result.step("threeway").status == "pass"


def test_build_records_real_references(padded_onnx, tmp_path):
    result = build(padded_onnx, tmp_path / "out", stop_after="sim")
    assert result.passed, result.summary()
    record = json.loads((tmp_path / "out" / "verification.json").read_text())
    steps = {s["step"]: s for s in record["steps"]}
    assert [s["step"] for s in record["steps"]] == ["lower", "names", "fifo", "estimate",
                                                      "threeway", "sim"]
    assert "qonnx's executor" in steps["threeway"]["compared"]["references"][0]
    assert steps["threeway"]["compared"]["integers"] > 0
    assert "qonnx's executor" in steps["sim"]["compared"]["references"][1]
    assert not any("FINN" in r for s in record["steps"] if s["compared"]
                   for r in s["compared"]["references"][:1])
    report = json.loads((tmp_path / "out" / "verify.json").read_text())
    assert report["passed"] and report["steps"][-1]["step"] == "fold"


def unit_bn_input(tmp_path):
    np.save(tmp_path / "x.npy", pixels((2, 3, 8, 8)).numpy())
    return tmp_path / "x.npy"


def test_unit_batch_norm_is_kept_exact(tmp_path):
    result = build(unit_bn_onnx(tmp_path / "m.onnx"), tmp_path / "out",
                   input_npy=unit_bn_input(tmp_path), stop_after="threeway")
    assert result.passed and result.steps[-1].step == "threeway", result.summary()


def test_build_fails_naming_step_and_tensor_without_the_fix(tmp_path, monkeypatch):
    """Without exact identities FINN's Streamline drops the batch norm: the build must say
    where, not pass."""
    monkeypatch.setattr(pipeline, "exact_identities", contextlib.nullcontext)
    result = build(unit_bn_onnx(tmp_path / "m.onnx"), tmp_path / "out",
                   input_npy=unit_bn_input(tmp_path), stop_after="sim")
    step = result.step("threeway")
    assert not result.passed and step.status == "fail"
    assert step.details.startswith("first difference at step streamline, tensor ")
    assert "integers differ" in step.details
    assert result.steps[-1].step == "threeway"  # the build stops at the failure


@pytest.mark.parametrize("bits, message", [
    (0.0, "bit width 0 is outside 2..8"),
    (40.0, "bit width 40 is outside 2..8"),
    (2.5, "bit width 2.5 is not a whole number"),
    (1.0, "bit width 1 is outside 2..8, what the lowering supports (binary activations"),
])
def test_input_quantizer_bit_widths_are_refused_by_name(padded_onnx, tmp_path, capsys, bits,
                                                        message):
    model = ModelWrapper(str(padded_onnx))
    quant = next(n for n in model.graph.node if n.op_type == "Quant")
    model.set_initializer(quant.input[3], np.asarray(bits, dtype=np.float32))
    model.save(str(tmp_path / "m.onnx"))
    with pytest.raises(HwGenError, match=f"node {re.escape(quant.name)} .*{re.escape(message)}"):
        build(tmp_path / "m.onnx", tmp_path / "out")
    assert main(["build", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "cli")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "cli" / "verification.json").exists()


@pytest.mark.parametrize("bits", [2.0])
def test_narrower_input_quantizers_are_exact(padded_onnx, tmp_path, bits):
    model = ModelWrapper(str(padded_onnx))
    quant = next(n for n in model.graph.node if n.op_type == "Quant")
    model.set_initializer(quant.input[3], np.asarray(bits, dtype=np.float32))
    model.save(str(tmp_path / "m.onnx"))
    result = build(tmp_path / "m.onnx", tmp_path / "out", stop_after="sim")
    assert result.passed, result.summary()


def test_residual_add_broadcasting_a_1x1_map_is_exact(tmp_path):
    torch.manual_seed(0)
    net = randomize_bn(BroadcastAddNet(), seed=3)
    x = pixels((2, 3, 9, 9), seed=1)
    np.save(tmp_path / "x.npy", x.numpy())
    result = build(export(net, x, tmp_path / "m.onnx"), tmp_path / "out",
                   input_npy=tmp_path / "x.npy", stop_after="sim")
    assert result.passed, result.summary()
    graph = ModelWrapper(str(tmp_path / "out" / "dataflow.onnx"))
    adds = [n for n in graph.graph.node if n.op_type.startswith("ElementwiseAdd")]
    assert adds and graph.get_tensor_datatype(adds[0].output[0]).name == "INT3"


def trained_once(net, seed):
    """One training-mode forward (Brevitas initialises its learned activation scales
    there, and a checkpoint holds them), then random batch norms, eval mode."""
    net.train()
    with torch.no_grad():
        net(pixels((2, 3, 8, 8), seed=seed))
    return randomize_bn(net, seed=seed)


def test_torch_checkpoint_is_the_reference_with_torch_option(tmp_path, capsys, monkeypatch):
    from brevitas_models import nets
    from brevitas_models.train import save_checkpoint

    monkeypatch.setitem(nets.NETWORKS, "padded", lambda w, n: PaddedNet("minus1", w, n))
    meta = {"name": "padded", "width": 8, "num_classes": 4}
    net = trained_once(PaddedNet("minus1", 8, 4), seed=4)
    model = export(net, pixels((1, 3, 8, 8)), tmp_path / "net.onnx")
    save_checkpoint(tmp_path / "net.pt", net, meta)
    code = main(["build", str(model), "-o", str(tmp_path / "out"), "--torch",
                 str(tmp_path / "net.pt"), "--stop-after", "sim"])
    assert code == 0, capsys.readouterr().err
    record = json.loads((tmp_path / "out" / "verification.json").read_text())
    steps = {s["step"]: s for s in record["steps"]}
    assert "torch model's quantizers" in steps["threeway"]["compared"]["references"][0]
    assert steps["sim"]["compared"]["references"][1] == "the torch model"
    # another network's weights are no reference for this model: one line, exit 2
    other = trained_once(PaddedNet("minus1", 8, 4), seed=5)
    save_checkpoint(tmp_path / "other.pt", other, meta)
    capsys.readouterr()
    assert main(["build", str(model), "-o", str(tmp_path / "out2"), "--torch",
                 str(tmp_path / "other.pt")]) == 2
    assert "equals no torch quant activation" in capsys.readouterr().err
