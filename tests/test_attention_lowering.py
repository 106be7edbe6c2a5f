"""The attention block inside the demo network and a small network: exported, lowered through
FINN, equal to torch (labels, logits, and the block's own output, bit for bit), and built (C
simulation of the layer on the data that reaches it, code generation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from brevitas import nn as qnn
from brevitas.export import export_qonnx
from brevitas.quant import SignedBinaryWeightPerTensorConst, Uint8ActPerTensorFloat
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from torch import nn

from brevitas_models.attention import BinaryAxialAttention
from brevitas_models.export import export_qonnx as export_for_finn
from brevitas_models.nets import build as build_network
from hw_gen.build import build
from hw_gen.errors import HwGenError
from hw_gen.lowering.execute import finn_execute
from hw_gen.lowering.pipeline import step_path
from hw_gen.verify import compare_finn_with_torch
from lowering_nets import binary_block, pixels, randomize_bn


class AttentionNet(nn.Module):
    """8-bit input, a stride-2 binary conv, the attention block, then a 1x1 binary classifier
    or a zero-padded 3x3 binary conv (an INT2 sign: the layer outputs its integers to FINN's
    thresholds instead of absorbing them)."""

    def __init__(self, after: str = "classifier", channels: int = 8, classes: int = 3, **kw):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat)
        self.down = binary_block(3, channels, stride=2)
        self.att = BinaryAxialAttention(channels, 4, **kw)
        self.after = binary_block(channels, channels) if after == "padded_conv" else nn.Identity()
        self.cls = qnn.QuantConv2d(channels, classes, 1, bias=False,
                                   weight_quant=SignedBinaryWeightPerTensorConst)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls(self.after(self.att(self.down(self.inp(x)))))


def with_random_gains(net: nn.Module, seed: int) -> nn.Module:
    net = randomize_bn(net, seed=seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        net.att.gain.copy_(torch.rand(net.att.channels, generator=g) * 2 * (1 << net.att.frac_bits))
    return net.eval()


NETS = {
    # the demo network (width 4): the block's sign feeds an upsampling and a concat into XNOR
    # units, so its thresholds move into the layer
    "demo": lambda: (with_random_gains(build_network("demo", width=4), 7), (2, 3, 24, 24)),
    "unfused": lambda: (with_random_gains(
        AttentionNet("padded_conv", value_bits=3, frac_bits=5), 4), (2, 3, 10, 14)),
}


def block_io(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The attention block's input and output in a torch forward of ``net``."""
    seen = {}
    handle = net.att.register_forward_hook(lambda m, i, o: seen.update(x=i[0], y=o))
    try:
        with torch.no_grad():
            net(x)
    finally:
        handle.remove()
    return getattr(seen["x"], "value", seen["x"]), getattr(seen["y"], "value", seen["y"])


@pytest.fixture(scope="module", params=sorted(NETS))
def built(request, tmp_path_factory):
    net, shape = NETS[request.param]()
    x = pixels(shape, seed=1)
    out = tmp_path_factory.mktemp(f"attention_{request.param}")
    export_for_finn(net, x[:1], out / "model.onnx")
    np.save(out / "x.npy", x.numpy())
    result = build(out / "model.onnx", out / "build", input_npy=out / "x.npy",
                   stop_after="codegen")
    return request.param, net, x, result


def _attention_nodes(model: ModelWrapper):
    return [n for n in model.graph.node if n.op_type.startswith("AxialAttention")]


def test_lowered_network_equals_torch(built):
    kind, net, x, result = built
    assert result.step("lower").status == "pass", result.summary()
    before = ModelWrapper(str(step_path(result.out_dir, "widths")))
    cmp = compare_finn_with_torch(before, net, x.numpy())
    assert cmp.passed and cmp.labels_equal, cmp
    # the block's own output, bit for bit: FINN's execution of our layer against torch
    (layer,) = _attention_nodes(before)
    context = finn_execute(before, x.numpy(), return_context=True)
    got = np.asarray(context[layer.output[0]]).transpose(0, 3, 1, 2)
    block_in, block_out = block_io(net, x)
    inst = getCustomOp(layer)
    if kind == "demo":  # thresholds absorbed: the layer outputs the block's output bits
        assert inst.fused
        bits = inst.get_nodeattr("outputDataType")
        want = (block_out > 0).numpy() if bits == "BINARY" else torch.sign(block_out).numpy()
        assert np.array_equal(got, want.astype(np.float32))
    else:  # the layer outputs s * I: torch's integer output times the absorbed signs
        with torch.no_grad():
            integers = net.att.integer_output(block_in).numpy()
        signs = np.asarray(inst.get_nodeattr("OutputSign") or [1] * integers.shape[1])
        assert np.array_equal(got, integers * signs[None, :, None, None])


def test_block_maps_to_mvaus_and_one_attention_layer(built):
    kind, _, _, result = built
    model = ModelWrapper(str(step_path(result.out_dir, "fold")))
    (layer,) = _attention_nodes(model)
    inst = getCustomOp(layer)
    assert layer.op_type == "AxialAttention_hls"
    assert inst.fused == (kind == "demo")
    producers = [model.find_producer(t) for t in layer.input]
    assert [p.op_type for p in producers[:3]] == ["MVAU_hls"] * 3  # Q, K, V projections
    assert producers[3].op_type == "DuplicateStreams_hls"  # the block input, for the residual
    assert all(getCustomOp(p).get_nodeattr("binaryXnorMode") == 1 for p in producers[:3])
    assert 3 in inst.get_nodeattr("binaryInputs")  # X shares the XNOR units' sign
    consumer = model.find_consumer(layer.output[0])
    if kind == "demo":
        assert consumer.op_type.startswith("UpsampleNearestNeighbour")
        assert inst.get_output_datatype().name in ("BINARY", "BIPOLAR")
    else:
        assert consumer.op_type.startswith("Thresholding")
        assert inst.get_nodeattr("valueDataType") == "INT3"
    assert not [n for n in model.graph.node if n.op_type == "MultiThreshold"]


def test_build_simulates_the_layer_in_cpp_on_real_data(built):
    _, _, _, result = built
    assert result.passed, result.summary()
    csim = result.step("csim_ours")
    assert csim.status == "pass" and csim.compared["integers"] > 0
    assert any(top.startswith("AxialAttention") for top in csim.extra)
    model = ModelWrapper(str(result.out_dir / "dataflow.onnx"))
    (layer,) = _attention_nodes(model)
    header = (result.out_dir / "ip" / layer.name / f"{layer.name}.hpp").read_text()
    depth = getCustomOp(layer).residual_fifo_depth()
    assert f"RESIDUAL_DEPTH = {depth};" in header


def test_layer_memories_are_in_the_layer_report(built):
    _, _, _, result = built
    import json

    report = json.loads((result.out_dir / "layers.json").read_text())
    (entry,) = [v for k, v in report["buffers"].items() if k.startswith("AxialAttention")]
    assert entry["residual_fifo"]["depth_words"] > 0 and entry["frame_buffer"]["bits"] > 0


def test_a_scaled_value_input_is_refused(tmp_path):
    """V must be on the block's fixed integer grid; anything else is named."""
    from onnx import helper

    from hw_gen.lowering import attention as lowering

    net = with_random_gains(AttentionNet(), 3)
    export_qonnx(net, pixels((1, 3, 10, 14)), str(tmp_path / "m.onnx"), dynamo=False)
    model = ModelWrapper(str(tmp_path / "m.onnx"))
    node = next(n for n in model.graph.node if n.op_type == lowering.OP_TYPE)
    scaled = model.make_new_valueinfo_name()
    half = model.make_new_valueinfo_name()
    model.set_initializer(half, np.asarray(0.5, dtype=np.float32))
    model.graph.node.insert(list(model.graph.node).index(node),
                            helper.make_node("Mul", [node.input[2], half], [scaled]))
    node.input[2] = scaled
    model.save(str(tmp_path / "scaled.onnx"))
    from hw_gen.lowering import lower

    with pytest.raises(HwGenError, match="BinaryAxialAttention.*V must be an integer tensor"):
        lower(tmp_path / "scaled.onnx", tmp_path / "out", stop_after="attention")


def test_three_way_check_passes_with_the_attention_activations(built):
    """torch == FINN's execution == sim at every lowering step, every activation of the block
    (Q, K, V, its output) included, as ``make demo`` checks it."""
    from hw_gen.threeway import check_against_torch

    kind, net, x, result = built
    with torch.no_grad():
        three = check_against_torch(net, result.out_dir, x.numpy())
    assert three.passed, [s.errors for s in three.steps if not s.passed]
    streamlined = next(s for s in three.steps if s.step == "streamline")
    # demo: the UINT8 input, ten binary activations, the MBU's sign and the block's Q, K, V,
    # output; the small network: its two signs, the block's four (V an INT3 Quant) and the
    # INT2 sign after it
    quantizers = {t.activation.split("_")[0] for t in streamlined.tensors}
    assert len(streamlined.tensors) == (16 if kind == "demo" else 7), quantizers
