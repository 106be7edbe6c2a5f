"""The three-way check (torch == FINN's Python execution == sim at every quantized activation,
after every lowering step) on the networks of test_lowering.py, and that it fails where it must."""

import shutil

import numpy as np
import pytest
import torch
from brevitas import nn as qnn
from brevitas.export import export_qonnx
from qonnx.core.modelwrapper import ModelWrapper

from brevitas_models.stock_nets import CNVStyle, TFCStyle
from hw_gen.errors import HwGenError
from hw_gen.lowering import lower
from hw_gen.lowering.activation_tags import mark_fused, set_tag, tagged_tensors
from hw_gen.lowering.pipeline import STEP_NAMES, step_path
from hw_gen.threeway import check_against_torch, check_lowering, torch_reference
from hw_gen.threeway import check as check_module
from lowering_nets import PaddedNet, SkipNet, TieNet, pixels, randomize_bn


def tie_net():
    torch.manual_seed(0)
    net = TieNet()
    randomize_bn(net.b0, seed=1)
    return net.eval()


NETWORKS = {
    "cnv": lambda: (CNVStyle(width=8).eval(), pixels((2, 3, 32, 32))),
    "tfc": lambda: (TFCStyle(width=32).eval(),
                    torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))),
    "pad_zero": lambda: (randomize_bn(PaddedNet("zero"), seed=3), pixels((2, 3, 9, 11))),
    "pad_minus1": lambda: (randomize_bn(PaddedNet("minus1"), seed=3), pixels((2, 3, 9, 11))),
    "skip_add": lambda: (randomize_bn(SkipNet("add"), seed=5), pixels((2, 3, 8, 10))),
    "skip_concat": lambda: (randomize_bn(SkipNet("concat"), seed=5), pixels((2, 3, 8, 10))),
    "tie": lambda: (tie_net(), pixels((2, 3, 12, 12))),
}


def lowered(name, out):
    torch.manual_seed(0)
    model, x = NETWORKS[name]()
    path = out / "model.onnx"
    export_qonnx(model, x[:1], str(path), dynamo=False)
    lower(path, out / "out")
    return model, x.numpy(), out / "out"


@pytest.fixture(scope="module")
def lowered_nets(tmp_path_factory):
    """Each network exported and lowered once per module."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = lowered(name, tmp_path_factory.mktemp(name))
        return cache[name]

    return get


@pytest.fixture
def skip_add(lowered_nets):
    return lowered_nets("skip_add")


def quant_activation_calls(model, x):
    """How many times torch runs a Brevitas quant activation module on ``x`` (counted from
    the modules, independently of the check's hooks on their quantizers)."""
    kinds = (qnn.QuantIdentity, qnn.QuantReLU, qnn.QuantHardTanh)
    calls = []
    handles = [m.register_forward_hook(lambda *a: calls.append(1))
               for m in model.modules() if isinstance(m, kinds)]
    with torch.no_grad():
        model(torch.as_tensor(x))
    for h in handles:
        h.remove()
    return len(calls)


@pytest.mark.parametrize("name", list(NETWORKS))
def test_every_network_passes_the_three_way_check(lowered_nets, name):
    model, x, out = lowered_nets(name)
    result = check_against_torch(model, out, x)
    assert result.passed, result.summary()
    assert [s.step for s in result.steps] == STEP_NAMES
    expected = quant_activation_calls(model, x)
    assert len(result.activations) == expected
    for step in result.steps:
        assert step.tensors_compared > 0 and step.integers_compared > 0
        assert step.activations_compared == expected - len(step.fused), step.step
    ran = {s.step: s.ran for s in result.steps}
    assert all("finn" in ran[s] for s in STEP_NAMES[: STEP_NAMES.index("widths") + 1])
    assert all("sim" in ran[s] for s in STEP_NAMES[STEP_NAMES.index("streamline"):])
    assert ran["specialize"] == ran["fold"] == ["sim"]
    labelled = [s for s in result.steps if any(t.activation == "labels" for t in s.tensors)]
    assert labelled and labelled[-1].step == "fold"


def test_every_activation_is_compared_as_torch_integers(skip_add):
    model, x, out = skip_add
    result = check_against_torch(model, out, x)
    to_hw = next(s for s in result.steps if s.step == "to_hw")
    hows = {t.how for t in to_hw.tensors}
    # the pixel input in NHWC, zero-padded signs on the INT2 route, the classifier's XNOR input
    assert "perm [0, 3, 1, 2] UINT8" in hows
    assert any("xnor 2b-1" in h for h in hows) and any("INT2" in h for h in hows)
    assert sum(t.size for t in to_hw.tensors if t.activation != "labels") == to_hw.integers_compared


def break_one_threshold(out, step, tensor, reference_values):
    """Save ``step``'s graph with one threshold of the layer producing ``tensor`` moved out of
    reach: the last one of a channel whose reference reaches the top level."""
    path = step_path(out, step)
    model = ModelWrapper(str(path))
    node = model.find_producer(tensor)
    top = reference_values.max()
    channel = int(np.flatnonzero((reference_values == top).any(axis=(0, 2, 3)))[0])
    thresholds = np.array(model.get_initializer(node.input[-1]))
    thresholds[channel, -1] = 1e6
    model.set_initializer(node.input[-1], thresholds)
    model.save(str(path))


def test_a_broken_step_graph_fails_naming_tensor_and_step(skip_add, tmp_path):
    model, x, out = skip_add
    copy = shutil.copytree(out, tmp_path / "out")
    widths = ModelWrapper(str(step_path(copy, "widths")))
    act, tensors = next((k, v) for k, v in tagged_tensors(widths).items()
                        if widths.find_producer(v[0][0]) is not None
                        and widths.find_producer(v[0][0]).op_type == "MVAU")
    tensor = tensors[0][0]
    qonnx = ModelWrapper(str(step_path(copy, "qonnx_cleanup")))
    reference = torch_reference(model, qonnx, x)
    break_one_threshold(copy, "widths", tensor, reference.by_id()[act].values)
    result = check_lowering(copy, reference)
    assert not result.passed
    assert [s.step for s in result.steps if not s.passed] == ["widths"]
    failures = result.failures()
    assert any(f.startswith(f"step widths: {act} at tensor {tensor} (finn)") for f in failures)
    assert any(f.startswith(f"step widths: {act} at tensor {tensor} (sim)") for f in failures)


def test_an_activation_missing_from_the_mapping_fails_unless_listed_as_fused(skip_add, tmp_path):
    model, x, out = skip_add
    copy = shutil.copytree(out, tmp_path / "out")
    path = step_path(copy, "to_hw")
    graph = ModelWrapper(str(path))
    act, tensors = sorted(tagged_tensors(graph).items())[1]
    for tensor, _ in tensors:
        set_tag(graph, tensor, None)
    graph.save(str(path))
    result = check_against_torch(model, copy, x)
    to_hw = next(s for s in result.steps if s.step == "to_hw")
    assert not result.passed and not to_hw.passed
    assert any(f"activation {act} " in e and "not listed as fused" in e for e in to_hw.errors)

    mark_fused(graph, act, "test: absorbed into an identical quantizer")
    graph.save(str(path))
    result = check_against_torch(model, copy, x)
    to_hw = next(s for s in result.steps if s.step == "to_hw")
    assert result.passed, result.summary()
    assert to_hw.fused == {act: "test: absorbed into an identical quantizer"}
    assert to_hw.activations_compared == len(result.activations) - 1
    assert "fused: " in result.summary()


def test_the_pairing_with_torch_is_proved_by_value(skip_add):
    model, x, out = skip_add
    qonnx = ModelWrapper(str(step_path(out, "qonnx_cleanup")))
    other = randomize_bn(SkipNet("add"), seed=6)  # same structure, other batch norms
    with pytest.raises(HwGenError, match=r"QONNX activation \S+ \(BipolarQuant\) equals no torch"):
        torch_reference(other, qonnx, x)


def test_pending_ties_are_applied_before_streamline_and_needed(lowered_nets, monkeypatch):
    model, x, out = lowered_nets("tie")
    result = check_against_torch(model, out, x)
    assert result.passed
    noted = [s.step for s in result.steps if any("half-to-even" in n for n in s.notes)]
    assert noted == STEP_NAMES[STEP_NAMES.index("qonnx_to_finn"):STEP_NAMES.index("streamline")]
    monkeypatch.setattr(check_module, "with_pending_ties", lambda m, *_: (m, 0))
    raw = check_against_torch(model, out, x)
    assert [s.step for s in raw.steps if not s.passed] == noted


def test_lowering_keeps_batch_norm_eps(tmp_path):
    """qonnx's RemoveIdentityOps (inside FINN's Streamline) would drop the Mul 0.999995 of a
    batch norm with unit statistics and eps 1e-5; an activation torch computes as 0.4999976
    would become 1 (hw_gen.lowering.exact_identity keeps it)."""
    torch.manual_seed(5)
    model, x = TieNet().eval(), pixels((2, 3, 8, 8))
    path = tmp_path / "model.onnx"
    export_qonnx(model, x[:1], str(path), dynamo=False)
    lower(path, tmp_path / "out", stop_after="streamline")
    result = check_against_torch(model, tmp_path / "out", x.numpy())
    assert result.passed, result.summary()


def test_check_lowering_reports_sim_refusing_a_later_step(skip_add, tmp_path):
    """Once sim ran a step, a later graph it cannot run is a failure, not a skip."""
    model, x, out = skip_add
    copy = shutil.copytree(out, tmp_path / "out")
    path = step_path(copy, "fold")
    graph = ModelWrapper(str(path))
    graph.graph.node[0].op_type = "Conv"
    graph.graph.node[0].domain = ""
    graph.save(str(path))
    qonnx = ModelWrapper(str(step_path(copy, "qonnx_cleanup")))
    result = check_lowering(copy, torch_reference(model, qonnx, x), steps=["widths", "fold"])
    fold = result.steps[-1]
    assert not fold.passed and "sim" not in fold.ran
    assert any("sim refuses a graph after it ran earlier steps" in e for e in fold.errors)
