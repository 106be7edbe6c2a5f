"""Binary activations that FINN's own conversions refuse: scales other than 1, and sign
thresholds that no matrix-vector unit absorbs."""

import torch
import torch.nn.functional as F
from brevitas import nn as qnn
from brevitas.quant import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst
from qonnx.custom_op.registry import getCustomOp
from torch import nn

from brevitas_models.random_nets import input_quant
from tests.lowering_check import lower_and_compare, pixels, random_bn


def _sign(scale: float = 1.0) -> nn.Module:
    return qnn.QuantIdentity(
        act_quant=SignedBinaryActPerTensorConst.let(min_val=-scale, max_val=scale))


def _conv(cin: int, cout: int, k: int, padding: int = 0) -> nn.Module:
    return qnn.QuantConv2d(cin, cout, k, padding=padding, bias=False,
                           weight_quant=SignedBinaryWeightPerTensorConst)


class ScaledSigns(nn.Module):
    """Binary activations of scale 2 and 0.5, padded with -scale (our models' style)."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = input_quant()
        self.c0, self.b0, self.a0 = _conv(3, 6, 3, 1), random_bn(6, 0), _sign(2.0)
        self.c1, self.b1, self.a1 = _conv(6, 5, 3), random_bn(5, 1), _sign(0.5)
        self.cls = _conv(5, 3, 1)

    def forward(self, x):
        a = self.a0(self.b0(self.c0(self.inp(x))))
        a = self.a1(self.b1(self.c1(F.pad(a, (1, 1, 1, 1), value=-2.0))))
        return self.cls(a)


def test_binary_activation_with_scale(tmp_path):
    torch.manual_seed(0)
    model = ScaledSigns().eval()
    result, cmp = lower_and_compare(model, pixels((2, 3, 7, 6), 4), tmp_path)
    assert [getCustomOp(n).get_nodeattr("binaryXnorMode")
            for n in result.model.graph.node if n.op_type == "MVAU"] == [0, 1, 1]
    assert cmp.labels_equal and cmp.passed, cmp


class SignAfterAdd(nn.Module):
    """A residual add of two binary tensors, re-binarized: the sign after the add and the
    stem's sign (read by the add and, in a copy, by an XNOR unit) stand alone."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = input_quant()
        self.c0, self.b0, self.a0 = _conv(3, 6, 3, 1), random_bn(6, 2), _sign()
        self.c1, self.b1, self.a1 = _conv(6, 6, 3), random_bn(6, 3), _sign()
        self.a2 = _sign()
        self.cls = _conv(6, 3, 1)

    def forward(self, x):
        a = self.a0(self.b0(self.c0(self.inp(x))))
        b = self.a1(self.b1(self.c1(F.pad(a, (1, 1, 1, 1), value=-1.0))))
        return self.cls(self.a2(a + b))


def test_stand_alone_sign_thresholds(tmp_path):
    torch.manual_seed(0)
    model = SignAfterAdd().eval()
    result, cmp = lower_and_compare(model, pixels((2, 3, 6, 9), 5), tmp_path)
    bipolar_out = [getCustomOp(n).get_nodeattr("outputDataType")
                   for n in result.model.graph.node if n.op_type == "Thresholding"]
    assert "BIPOLAR" in bipolar_out
    assert cmp.labels_equal and cmp.passed, cmp


class ScaledSignPaddedAndAdded(nn.Module):
    """A binary activation of scale 1/2, padded with -1/2 for one conv and read by an add."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = input_quant()
        self.c0, self.b0, self.a0 = _conv(3, 5, 3, 1), random_bn(5, 4), _sign(0.5)
        self.c1, self.b1, self.a1 = _conv(5, 5, 3), random_bn(5, 5), _sign(0.5)
        self.a2 = _sign(0.5)
        self.cls = _conv(5, 3, 1)

    def forward(self, x):
        a = self.a0(self.b0(self.c0(self.inp(x))))
        b = self.a1(self.b1(self.c1(F.pad(a, (1, 1, 1, 1), value=-0.5))))
        return self.cls(self.a2(a + b))


def test_scaled_sign_read_by_pad_and_add(tmp_path):
    """The scale moves past the Pad in a copy of its own (the Mul is shared with the add):
    the pad was left at -0.5 and refused."""
    torch.manual_seed(0)
    model = ScaledSignPaddedAndAdded().eval()
    result, cmp = lower_and_compare(model, pixels((2, 3, 7, 7), 13), tmp_path)
    assert "FMPadding" in [n.op_type for n in result.model.graph.node]
    assert cmp.labels_equal and cmp.passed, cmp


class ScaledSignUpsampledThenPadded(nn.Module):
    """A binary activation of scale 1/2, upsampled, then padded with -1/2."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = input_quant()
        self.c0, self.b0, self.a0 = _conv(3, 4, 3, 1), random_bn(4, 6), _sign(0.5)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.c1, self.b1, self.a1 = _conv(4, 5, 3), random_bn(5, 7), _sign(0.5)
        self.cls = _conv(5, 3, 1)

    def forward(self, x):
        a = self.up(self.a0(self.b0(self.c0(self.inp(x)))))
        return self.cls(self.a1(self.b1(self.c1(F.pad(a, (1, 1, 1, 1), value=-0.5)))))


def test_scale_moves_past_upsampling_to_the_pad(tmp_path):
    """The scale sat behind the upsampling, so the pad value stayed -0.5 (refused)."""
    torch.manual_seed(0)
    model = ScaledSignUpsampledThenPadded().eval()
    result, cmp = lower_and_compare(model, pixels((2, 3, 4, 5), 17), tmp_path)
    assert "FMPadding" in [n.op_type for n in result.model.graph.node]
    assert cmp.labels_equal and cmp.passed, cmp


class ScaledSignPooledThenPaddedAndConcatenated(nn.Module):
    """A binary activation of scale 2.5, max-pooled; the pooled tensor is padded with -2.5
    for a conv and concatenated with that conv's output."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = input_quant()
        self.c0, self.b0, self.a0 = _conv(3, 4, 1), random_bn(4, 8), _sign(2.5)
        self.pool = nn.MaxPool2d(2)
        self.c1, self.b1, self.a1 = _conv(4, 4, 3), random_bn(4, 9), _sign(2.5)
        self.cls = _conv(8, 3, 1)

    def forward(self, x):
        p = self.pool(self.a0(self.b0(self.c0(self.inp(x)))))
        q = self.a1(self.b1(self.c1(F.pad(p, (1, 1, 1, 1), value=-2.5))))
        return self.cls(torch.cat([p, q], 1))


def test_scale_behind_a_pooling_read_twice(tmp_path):
    """The scale sat in front of a max pooling read by the pad and by the concat, so no
    single path carried it to the pad: it stayed -2.5 (refused, sweep seeds 668, 698)."""
    torch.manual_seed(0)
    model = ScaledSignPooledThenPaddedAndConcatenated().eval()
    result, cmp = lower_and_compare(model, pixels((2, 3, 8, 9), 18), tmp_path)
    assert "FMPadding" in [n.op_type for n in result.model.graph.node]
    assert cmp.labels_equal and cmp.passed, cmp
