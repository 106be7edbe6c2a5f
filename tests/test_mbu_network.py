"""The multi-branch upsampling block inside a small network: exported, lowered onto our layer,
FINN's execution == torch (labels, logits and the blocks' sign outputs integer for integer),
and hw-gen build's C simulation of the layer's HLS == sim on the data that reaches it. FINN's
Python execution of our layer calls its sim kernel, so torch and the C++ are the independent
references here. Also: what the lowering refuses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qonnx.core.modelwrapper import ModelWrapper
from torch import nn

from brevitas_models.export import export_qonnx
from brevitas_models.layers import BinaryAct, BinaryConvBlock, Classifier, InputBlock
from brevitas_models.mbu import MultiBranchUpsample
from brevitas_models.nets import build as build_network
from hw_gen.build import build
from hw_gen.errors import HwGenError
from hw_gen.lowering import lower
from hw_gen.lowering.execute import finn_execute
from hw_gen.lowering.pipeline import step_path
from hw_gen.verify import compare_finn_with_torch
from lowering_nets import pixels, randomize_bn

SIZE = (8, 12)


class MBUNet(nn.Module):
    """Stem, stride-2 conv, a gated bilinear MBU (K=4, repeated dilation), stride-2 conv, an
    ungated nearest MBU with one branch (the ablations), 8-bit classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = InputBlock(3, 4)
        self.down1 = BinaryConvBlock(4, 6, self.stem.act, stride=2)
        self.up1 = MultiBranchUpsample(6, 4, self.down1.act, dilations=(1, 2, 3, 2))
        self.down2 = BinaryConvBlock(4, 4, self.up1.act, stride=2)
        self.up2 = MultiBranchUpsample(4, 4, self.down2.act, dilations=(2,), gated=False,
                                       mode="nearest", return_quant_tensor=True)
        self.head = Classifier(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.up2(self.down2(self.up1(self.down1(self.stem(x))))))


def randomized(net: nn.Module, seed: int) -> nn.Module:
    """Random batch norms (negative gammas too: the lowering flips those channels), gates and
    activation scales."""
    torch.manual_seed(seed)
    randomize_bn(net, seed)
    with torch.no_grad():
        for block in net.modules():
            if isinstance(block, MultiBranchUpsample) and block.gated:
                block.gate_logit.normal_(0.0, 2.0)
                block.log_beta.uniform_(-1.0, 1.0)
            if isinstance(block, BinaryAct):
                for p in block.parameters():
                    p.uniform_(-2.0, 1.0)
    return net.eval()


def random_net(seed: int) -> MBUNet:
    torch.manual_seed(seed)
    return randomized(MBUNet(), seed)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    net = random_net(7)
    path = tmp_path_factory.mktemp("mbu_net") / "mbu_net.onnx"
    export_qonnx(net, pixels((1, 3) + SIZE), path)
    return net, path


@pytest.fixture(scope="module")
def built(exported, tmp_path_factory):
    net, path = exported
    out = tmp_path_factory.mktemp("mbu_build")
    x = pixels((3, 3) + SIZE, seed=11).numpy()
    np.save(out / "x.npy", x)
    return build(path, out / "build", input_npy=out / "x.npy", stop_after="codegen"), x


def _sign_integers(net: nn.Module, blocks: dict[str, MultiBranchUpsample],
                   x: np.ndarray) -> dict[str, np.ndarray]:
    """The blocks' sign outputs (-1/+1) in torch, NHWC."""
    found = {}

    def keep(name):
        def hook(module, _inputs, output):
            value = output.value if hasattr(output, "value") else output
            found[name] = np.round((value / module.scale()).numpy()).astype(np.int64)
        return hook

    handles = [block.act.register_forward_hook(keep(name)) for name, block in blocks.items()]
    with torch.no_grad():
        net(torch.as_tensor(x))
    for h in handles:
        h.remove()
    return {k: v.transpose(0, 2, 3, 1) for k, v in found.items()}


def test_build_passes_and_csim_compares_the_layer(built):
    result, _ = built
    assert result.passed, result.summary()
    csim = result.step("csim_ours")
    assert csim.status == "pass", result.summary()
    assert csim.compared["integers"] == 3 * (2 * 8 * 12 * 4)  # both blocks, 3 frames
    blocks = result.step("lower").extra["facts"]["multi_branch_upsampling"]
    assert [(b["mode"], b["branches"], b["frac_bits"] <= 6) for b in blocks] == [
        ("bilinear", 4, True), ("nearest", 1, True)]
    assert blocks[1]["frac_bits"] == 0 and blocks[1]["gate_type"] == "BINARY"
    assert sum(b["flipped_channels"] for b in blocks) > 0


def test_finn_execution_equals_torch(exported, built):
    net, _ = exported
    result, x = built
    check_blocks_against_torch(result.out_dir, net, {"up1": net.up1, "up2": net.up2}, x)


def check_blocks_against_torch(out_dir, net: nn.Module, blocks: dict[str, MultiBranchUpsample],
                               x: np.ndarray) -> None:
    """FINN's execution of the lowered graph (before specialization) == torch: labels, logits
    and each block's sign output, integer for integer."""
    before = ModelWrapper(str(step_path(out_dir, "widths")))
    comparison = compare_finn_with_torch(before, net, x)
    assert comparison.passed and comparison.labels_equal, comparison
    ours = [n for n in before.graph.node if n.op_type == "MultiBranchUpsample"]
    assert len(ours) == len(blocks)
    context = finn_execute(before, x, return_context=True)
    signs = _sign_integers(net, blocks, x)
    for node, name in zip(ours, blocks):
        (threshold,) = before.find_consumers(node.output[0])
        assert threshold.op_type == "Thresholding"
        got = context[threshold.output[0]].reshape(signs[name].shape).astype(np.int64)
        if before.get_tensor_datatype(threshold.output[0]).name == "BINARY":
            got = 2 * got - 1  # a sign that feeds an XNOR unit: bit 0 means -1
        assert np.array_equal(got, signs[name]), name
        assert 0.2 < (signs[name] > 0).mean() < 0.8, name  # not a constant map


def test_demo_network_block_is_exact(tmp_path):
    """The demo encoder-decoder (its decoder's last x2 is an MBU): C simulation of the layer (and
    of the attention block) on the real data == sim, FINN's execution == torch."""
    net = randomized(build_network("demo", width=4), 3)
    assert isinstance(net.mbu, MultiBranchUpsample)
    path = export_qonnx(net, pixels((1, 3, 16, 16)), tmp_path / "demo.onnx")
    x = pixels((2, 3, 16, 16), seed=4).numpy()
    np.save(tmp_path / "x.npy", x)
    result = build(path, tmp_path / "build", input_npy=tmp_path / "x.npy", stop_after="csim_ours")
    assert result.passed, result.summary()
    # the MBU's output (2 frames, 16x16, width 4) and the attention block's (2x2, 4 * 4 channels)
    assert result.step("csim_ours").compared["integers"] == 2 * 16 * 16 * 4 + 2 * 2 * 2 * 16
    check_blocks_against_torch(result.out_dir, net, {"mbu": net.mbu}, x)


def _set_gain(model: ModelWrapper, value: float) -> None:
    mul = next(n for n in model.graph.node if n.op_type == "Mul"
               and (p := model.find_producer(n.input[0])) is not None and p.op_type == "Conv")
    gain = model.get_initializer(mul.input[1]).copy()
    gain.reshape(-1)[0] = value
    model.set_initializer(mul.input[1], gain)


def _set_pad_value(model: ModelWrapper, value: float) -> None:
    """Set the pad constant of the block's dilation-3 branch (Pad [-> Mul(s)] -> Conv)."""
    conv = next(n for n in model.graph.node if n.op_type == "Conv"
                and any(a.name == "dilations" and list(a.ints) == [3, 3] for a in n.attribute))
    node = model.find_producer(conv.input[0])
    while node.op_type != "Pad":
        node = model.find_producer(node.input[0])
    model.set_initializer(node.input[2], np.asarray(value, dtype=np.float32))


@pytest.mark.parametrize("edit, message", [
    (lambda m: _set_gain(m, 1.0 / 3.0), "gate 0.333333343 of channel 0 is not a fixed-point value "
                                        "G / 2^F with F <= 24"),
    (lambda m: _set_gain(m, -0.5), "gate of channel 0 is -0.5; the block's gates are nonnegative"),
    (lambda m: _set_pad_value(m, 0.0), "pads the binary activation with 0"),
])
def test_lowering_refuses_a_block_that_does_not_fit(exported, tmp_path, edit, message):
    _, path = exported
    model = ModelWrapper(str(path))
    edit(model)
    bad = tmp_path / "bad.onnx"
    model.save(str(bad))
    with pytest.raises(HwGenError) as info:
        lower(bad, tmp_path / "out", stop_after="multi_branch_upsampling")
    text = str(info.value)
    assert message in text and "(multi-branch upsampling block)" in text and "\n" not in text


class ZeroPaddedConvUp(nn.Module):
    """A user's style: a zero-padded binary conv straight into nearest x2 (not our block)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = InputBlock(3, 4)
        self.conv = BinaryConvBlock(4, 4, self.stem.act, padding="zero").conv
        self.bn = nn.BatchNorm2d(4)
        self.act = BinaryAct(return_quant_tensor=True)
        self.head = Classifier(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.interpolate(self.conv(self.stem(x)), scale_factor=2, mode="nearest")
        return self.head(self.act(self.bn(y)))


def test_a_zero_padded_conv_before_a_resize_is_not_taken(tmp_path):
    path = export_qonnx(randomized(ZeroPaddedConvUp(), 5), pixels((1, 3, 6, 8)),
                        tmp_path / "user.onnx")
    run = lower(path, tmp_path / "out", stop_after="multi_branch_upsampling").run
    ops = [n.op_type for n in run.model.graph.node]
    assert "Resize" in ops and "MultiBranchUpsample" not in ops
    assert run.context.facts["multi_branch_upsampling"] == []
