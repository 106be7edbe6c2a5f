"""``hw-gen sim`` against torch, its one-line errors, and ``hw-gen lower --verify``."""

import json
import os

import numpy as np
import pytest
import torch
from brevitas.export import export_qonnx
from qonnx.core.modelwrapper import ModelWrapper

from hw_gen.cli import main
from hw_gen.lowering import lower, rounding
from hw_gen.verify import LOGIT_RTOL, exact_argmax, torch_reference
from lowering_nets import PaddedNet, SkipNet, TieNet, pixels, randomize_bn


def export(model, x, path):
    export_qonnx(model, x[:1], str(path), dynamo=False)
    return path


@pytest.fixture(scope="module")
def skip_net(tmp_path_factory):
    out = tmp_path_factory.mktemp("skip")
    model = randomize_bn(SkipNet("add"), seed=5)
    x = pixels((3, 3, 8, 10), seed=2)
    lower(export(model, x, out / "model.onnx"), out / "lowered")
    np.save(out / "x.npy", x.numpy())
    return model, x.numpy(), out


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_sim_round_trip_equals_torch(skip_net, capsys):
    model, x, out = skip_net
    graph = out / "lowered" / "dataflow.onnx"
    code, _, err = run(capsys, "sim", graph, "--input", out / "x.npy", "--output", out / "y.npy")
    assert code == 0, err
    ref = torch_reference(model, x)
    logits = np.load(out / "y.npy")
    assert logits.shape == ref.shape and logits.dtype == np.float32
    assert np.abs(logits - ref).max() <= LOGIT_RTOL * max(1.0, float(np.abs(ref).max()))
    code, _, err = run(capsys, "sim", graph, "--input", out / "x.npy", "--output",
                       out / "labels.npy", "--labels")
    assert code == 0, err
    labels = np.load(out / "labels.npy")
    assert labels.dtype == np.int64
    assert np.array_equal(labels, exact_argmax(ref))


def test_sim_bundle_is_written_beside_the_graph_and_refreshed(skip_net, capsys):
    _, _, out = skip_net
    graph = out / "lowered" / "dataflow.onnx"
    bundle = out / "lowered" / "dataflow.sim.json"
    args = ("sim", graph, "--input", out / "x.npy", "--output", out / "y.npy")
    assert run(capsys, *args)[0] == 0
    assert bundle.exists() and bundle.with_suffix(".npz").exists()
    written = bundle.stat().st_mtime_ns
    assert run(capsys, *args)[0] == 0
    assert bundle.stat().st_mtime_ns == written
    later = bundle.stat().st_mtime + 10
    os.utime(graph, (later, later))  # a newer file of the same content: the bundle is kept
    assert run(capsys, *args)[0] == 0
    assert bundle.stat().st_mtime_ns == written
    # a bundle of another graph, newer than this graph, is not trusted: rewritten
    good = bundle.read_text()
    bundle.write_text(good.replace('"nodes"', '"nodes" ', 1))
    os.utime(bundle, (later + 10, later + 10))
    assert run(capsys, *args)[0] == 0
    assert bundle.read_text() == good
    model = ModelWrapper(str(graph))  # the graph changes: the bundle is rewritten
    model.set_metadata_prop("hwgen.test", "changed")
    model.save(str(graph))
    written = bundle.stat().st_mtime_ns
    assert run(capsys, *args)[0] == 0
    assert bundle.stat().st_mtime_ns != written


def one_line_error(capsys, *argv):
    code, _, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hw-gen: error: "), err
    return lines[0]


def test_sim_errors_are_one_line(skip_net, tmp_path, capsys):
    _, _, out = skip_net
    graph = out / "lowered" / "dataflow.onnx"
    y = tmp_path / "y.npy"
    err = one_line_error(capsys, "sim", tmp_path / "nope.onnx", "--input", out / "x.npy", "--output", y)
    assert "graph file not found" in err
    err = one_line_error(capsys, "sim", graph, "--input", tmp_path / "nope.npy", "--output", y)
    assert "input file not found" in err
    np.save(tmp_path / "wrong.npy", pixels((1, 3, 10, 8)).numpy())
    err = one_line_error(capsys, "sim", graph, "--input", tmp_path / "wrong.npy", "--output", y)
    assert "shape (1, 3, 10, 8), the graph takes (N, 3, 8, 10)" in err
    np.save(tmp_path / "float.npy", np.full((1, 3, 8, 10), 0.3, dtype=np.float32))
    err = one_line_error(capsys, "sim", graph, "--input", tmp_path / "float.npy", "--output", y)
    assert "values must be k/255" in err
    assert not y.exists()


@pytest.mark.parametrize("outputs,flag,message", [
    ("logits", ["--labels"], "has no 'labels' output"),
    ("labels", [], "has only the 'labels' output; use --labels"),
])
def test_sim_names_the_missing_output(tmp_path, capsys, outputs, flag, message):
    model, x = randomize_bn(PaddedNet("minus1"), seed=1), pixels((1, 3, 8, 8))
    lower(export(model, x, tmp_path / "m.onnx"), tmp_path / "out", outputs=outputs)
    np.save(tmp_path / "x.npy", x.numpy())
    err = one_line_error(capsys, "sim", tmp_path / "out" / "dataflow.onnx", "--input",
                         tmp_path / "x.npy", "--output", tmp_path / "y.npy", *flag)
    assert message in err


def tie_model(path):
    torch.manual_seed(0)
    net = TieNet()
    randomize_bn(net.b0, seed=1)
    return export(net.eval(), pixels((1, 3, 12, 12)), path)


def test_lower_verify_passes_and_writes_verify_json(tmp_path, capsys):
    code, printed, err = run(capsys, "lower", tie_model(tmp_path / "m.onnx"), "-o", tmp_path / "out",
                             "--verify")
    assert code == 0, printed + err
    report = json.loads((tmp_path / "out" / "verify.json").read_text())
    assert report["passed"] and report["reference"] == "qonnx"
    assert [s["step"] for s in report["steps"]][-1] == "fold"
    assert all(s["activations_compared"] == 4 for s in report["steps"])
    assert "integers" in printed and "PASS" in printed


def test_lower_verify_fails_with_exit_code_1(tmp_path, capsys, monkeypatch):
    """Without the half-to-even rule the tie network's thresholds round ties up."""
    monkeypatch.setattr(rounding.ApplyHalfEvenTies, "apply", lambda self, model: (model, False))
    x = pixels((1, 3, 12, 12), seed=0)
    np.save(tmp_path / "x.npy", x.numpy())
    code, printed, _ = run(capsys, "lower", tie_model(tmp_path / "m.onnx"), "-o", tmp_path / "out",
                           "--verify", "--input", tmp_path / "x.npy")
    assert code == 1
    report = json.loads((tmp_path / "out" / "verify.json").read_text())
    failed = [s["step"] for s in report["steps"] if not s["passed"]]
    assert failed and failed[0] == "streamline"
    assert "step streamline: Quant_" in printed


def test_lower_verify_rejects_a_wrong_input(tmp_path, capsys):
    np.save(tmp_path / "x.npy", pixels((1, 3, 9, 12)).numpy())
    err = one_line_error(capsys, "lower", tie_model(tmp_path / "m.onnx"), "-o", tmp_path / "out",
                         "--verify", "--input", tmp_path / "x.npy")
    assert "shape (1, 3, 9, 12), the graph takes (N, 3, 12, 12)" in err
