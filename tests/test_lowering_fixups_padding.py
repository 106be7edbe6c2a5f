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
from tests.lowering_check import lower_and_compare, pixels


def _bn(c: int, seed: int) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(c)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(c, generator=gen) * 3)
        bn.weight.copy_(torch.randn(c, generator=gen))
        bn.bias.copy_(torch.randn(c, generator=gen))
    return bn


class MinusOnePadIntWeights(nn.Module):
    """A binary activation padded with -1 (our models' style) into a 3x3 conv, dilation 2,
    with 4-bit integer weights."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = input_quant()
        self.c0 = qnn.QuantConv2d(3, 6, 3, padding=1, bias=False,
                                  weight_quant=SignedBinaryWeightPerTensorConst)
        self.b0 = _bn(6, 0)
        self.a0 = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
        self.c1 = qnn.QuantConv2d(6, 5, 3, dilation=2, bias=False,
                                  weight_quant=Int8WeightPerTensorFloat, weight_bit_width=4)
        self.b1 = _bn(5, 1)
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
