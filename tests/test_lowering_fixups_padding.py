"""Padding of binary activations into convolutions that are not XNOR units."""

import torch
import torch.nn.functional as F
from brevitas import nn as qnn
from brevitas.quant import (
    Int8WeightPerTensorFloat,
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
)
from qonnx.custom_op.registry import getCustomOp
from torch import nn

from brevitas_models.random_nets import input_quant
from tests.lowering_check import lower_and_compare, pixels, random_bn


class MinusOnePadIntWeights(nn.Module):
    """A binary activation padded with -1 (our models' style) into a 3x3 conv, dilation 2,
    with 4-bit integer weights."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = input_quant()
        self.c0 = qnn.QuantConv2d(3, 6, 3, padding=1, bias=False,
                                  weight_quant=SignedBinaryWeightPerTensorConst)
        self.b0 = random_bn(6, 0)
        self.a0 = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
        self.c1 = qnn.QuantConv2d(6, 5, 3, dilation=2, bias=False,
                                  weight_quant=Int8WeightPerTensorFloat, weight_bit_width=4)
        self.b1 = random_bn(5, 1)
        self.a1 = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
        self.cls = qnn.QuantConv2d(5, 3, 1, bias=False,
                                   weight_quant=SignedBinaryWeightPerTensorConst)

    def forward(self, x):
        a = self.a0(self.b0(self.c0(self.inp(x))))
        a = self.a1(self.b1(self.c1(F.pad(a, (2, 2, 2, 2), value=-1.0))))
        return self.cls(a)


def test_minus_one_padding_into_integer_weight_conv(tmp_path):
    """FINN pads zeros only: the padded unit must read BINARY {0, 1} (0 meaning -1) and its
    product be restored as 2 (b . W) - sum(W)."""
    torch.manual_seed(0)
    model = MinusOnePadIntWeights().eval()
    result, cmp = lower_and_compare(model, pixels((2, 3, 7, 8), 3), tmp_path)
    mvaus = [getCustomOp(n) for n in result.model.graph.node if n.op_type == "MVAU"]
    padded = [m for m in mvaus if m.get_nodeattr("weightDataType").startswith("INT")]
    assert [m.get_nodeattr("inputDataType") for m in padded] == ["BINARY"]
    assert any(n.op_type == "FMPadding" for n in result.model.graph.node)
    assert cmp.labels_equal and cmp.passed, cmp


class MixedPadding(nn.Module):
    """One binary activation padded with -1 for one conv and with 0 for another."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = input_quant()
        self.c0 = qnn.QuantConv2d(3, 4, 3, padding=1, bias=False,
                                  weight_quant=SignedBinaryWeightPerTensorConst)
        self.b0 = random_bn(4, 2)
        self.a0 = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
        self.minus = qnn.QuantConv2d(4, 4, 3, bias=False,
                                     weight_quant=SignedBinaryWeightPerTensorConst)
        self.zero = qnn.QuantConv2d(4, 4, 3, padding=1, bias=False,
                                    weight_quant=SignedBinaryWeightPerTensorConst)

    def forward(self, x):
        a = self.a0(self.b0(self.c0(self.inp(x))))
        return self.minus(F.pad(a, (1, 1, 1, 1), value=-1.0)) + self.zero(a)


def test_mixed_zero_and_minus_one_padding_is_refused(tmp_path):
    """Refused before streamlining, naming the sign and both pads (it was refused at the
    sliding window with a message naming an unnamed Im2Col)."""
    import pytest

    from hw_gen.errors import HwGenError

    with pytest.raises(HwGenError, match=r"MultiThreshold_\d+ .*padded with 0 by Conv_\d+ "
                                         r"\(Conv\) and with -1 by Pad_\d+ \(Pad\)"):
        lower_and_compare(MixedPadding().eval(), pixels((1, 3, 6, 6), 12), tmp_path)
