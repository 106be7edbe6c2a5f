"""XNOR conversion in branching graphs: one sign read by several XNOR units (a fork, a concat
read twice), or by an XNOR unit and a unit with integer weights."""

import torch
import torch.nn.functional as F
from brevitas import nn as qnn
from brevitas.quant import (
    Int8WeightPerTensorFloat,
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
)
from torch import nn

from brevitas_models.random_nets import input_quant
from tests.lowering_check import lower_and_compare, pixels, random_bn


def _block(cin: int, cout: int, k: int, padding: int = 0, int_weights: bool = False
           ) -> nn.Sequential:
    bn = random_bn(cout, cin * 100 + cout)
    return nn.Sequential(
        qnn.QuantConv2d(cin, cout, k, padding=padding, bias=False,
                        **({"weight_quant": Int8WeightPerTensorFloat, "weight_bit_width": 4}
                           if int_weights else
                           {"weight_quant": SignedBinaryWeightPerTensorConst})),
        bn, qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst))


class ForkToTwoXnor(nn.Module):
    """One sign read by two unpadded binary convs, then by a third through a concat."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = input_quant()
        self.stem = _block(3, 6, 3, padding=1)
        self.left = _block(6, 5, 1)
        self.right = _block(6, 4, 1)
        self.mid = _block(9, 7, 1)
        self.cls = qnn.QuantConv2d(16, 3, 1, bias=False,
                                   weight_quant=SignedBinaryWeightPerTensorConst)

    def forward(self, x):
        a = self.stem(self.inp(x))
        cat = torch.cat([self.left(a), self.right(a)], 1)
        return self.cls(torch.cat([cat, self.mid(cat)], 1))


def test_sign_shared_by_several_xnor_units(tmp_path):
    torch.manual_seed(0)
    model = ForkToTwoXnor().eval()
    result, cmp = lower_and_compare(model, pixels((2, 3, 7, 9), 1), tmp_path)
    ops = [n.op_type for n in result.model.graph.node]
    assert ops.count("MVAU") == 5
    assert cmp.labels_equal and cmp.passed, cmp


class ForkToXnorAndIntWeights(nn.Module):
    """One sign read by a binary conv (XNOR) and by a conv with 4-bit weights (not XNOR)."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = input_quant()
        self.stem = _block(3, 6, 3, padding=1)
        self.xnor = _block(6, 5, 1)
        self.wide = _block(6, 4, 1, int_weights=True)
        self.cls = qnn.QuantConv2d(9, 3, 1, bias=False,
                                   weight_quant=SignedBinaryWeightPerTensorConst)

    def forward(self, x):
        a = self.stem(self.inp(x))
        return self.cls(torch.cat([self.xnor(a), self.wide(a)], 1))


def test_sign_shared_by_xnor_and_integer_weight_units(tmp_path):
    """The XNOR side's copy of the sign must be typed bipolar when it is made, or its unit
    is left a bipolar MatMul that FINN executes as a popcount (a silent mismatch)."""
    torch.manual_seed(1)
    model = ForkToXnorAndIntWeights().eval()
    result, cmp = lower_and_compare(model, pixels((2, 3, 6, 7), 2), tmp_path)
    from qonnx.custom_op.registry import getCustomOp

    xnor_modes = sorted(getCustomOp(n).get_nodeattr("binaryXnorMode")
                        for n in result.model.graph.node if n.op_type == "MVAU")
    assert xnor_modes == [0, 0, 1, 1]  # stem and 4-bit unit; binary unit and classifier
    assert cmp.labels_equal and cmp.passed, cmp


class ConcatReadByXnorAndAdd(nn.Module):
    """A concat of two binary tensors read by an XNOR unit and by a residual add."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = input_quant()
        self.stem = _block(3, 4, 1)
        self.branch = _block(4, 3, 3)
        self.point = _block(7, 7, 1)
        self.requant = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
        self.cls = qnn.QuantConv2d(7, 3, 1, bias=False,
                                   weight_quant=SignedBinaryWeightPerTensorConst)

    def forward(self, x):
        a = self.stem(self.inp(x))
        c = torch.cat([a, self.branch(F.pad(a, (1, 1, 1, 1), value=-1.0))], 1)
        return self.cls(self.requant(c + self.point(c)))


def test_concat_read_by_xnor_unit_and_add(tmp_path):
    """The signs and the concat are copied for the XNOR side (was refused)."""
    torch.manual_seed(2)
    model = ConcatReadByXnorAndAdd().eval()
    result, cmp = lower_and_compare(model, pixels((2, 3, 7, 6), 11), tmp_path)
    ops = [n.op_type for n in result.model.graph.node]
    assert ops.count("StreamingConcat") == 2 and "ElementwiseAdd" in ops
    assert cmp.labels_equal and cmp.passed, cmp


class XnorIntoZeroPadding(nn.Module):
    """Users' style: a binary 1x1 conv (an XNOR unit) whose sign is zero-padded by the next
    conv, so the sign emits INT2 {-1, +1} from inside the XNOR unit."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = input_quant()
        self.stem = _block(3, 5, 3, padding=1)
        self.point = _block(5, 6, 1)
        self.padded = _block(6, 4, 3, padding=1)
        self.cls = qnn.QuantConv2d(4, 3, 1, bias=False,
                                   weight_quant=SignedBinaryWeightPerTensorConst)

    def forward(self, x):
        return self.cls(self.padded(self.point(self.stem(self.inp(x)))))


def test_xnor_unit_with_int2_sign(tmp_path):
    """FINN's binary MVAU inference set the activation offset to INT2's minimum (-2) instead
    of the sign's -1: the unit emitted -2/0 for -1/+1 (a silent mismatch)."""
    torch.manual_seed(3)
    model = XnorIntoZeroPadding().eval()
    result, cmp = lower_and_compare(model, pixels((2, 3, 6, 7), 15), tmp_path)
    from qonnx.custom_op.registry import getCustomOp

    units = [getCustomOp(n) for n in result.model.graph.node if n.op_type == "MVAU"]
    int2 = [u for u in units if u.get_nodeattr("binaryXnorMode")
            and u.get_nodeattr("outputDataType") == "INT2"]
    assert [u.get_nodeattr("ActVal") for u in int2] == [-1]
    assert cmp.labels_equal and cmp.passed, cmp
