"""Adds and concats of multi-bit activations that share a quantizer (one scale)."""

import torch
import torch.nn.functional as F
from brevitas import nn as qnn
from brevitas.quant import SignedBinaryWeightPerTensorConst
from torch import nn

from brevitas_models.random_nets import QSpec, input_quant, make_act
from tests.lowering_check import lower_and_compare, pixels, quant_block


U4 = QSpec("uint", 4, 0.25)
I4 = QSpec("int", 4, 0.125)


class ConcatForks(nn.Module):
    """Concats of 4-bit tensors, each concat read by two convs (one zero-padded)."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = input_quant()
        self.stem = quant_block(3, 6, 3, U4, 0)
        self.l, self.r = quant_block(6, 3, 1, U4, 1), quant_block(6, 4, 1, U4, 2)
        self.p, self.q = quant_block(7, 5, 1, U4, 3), quant_block(7, 5, 3, U4, 4, padding=1)
        self.cls = qnn.QuantConv2d(10, 3, 1, bias=False,
                                   weight_quant=SignedBinaryWeightPerTensorConst)

    def forward(self, x):
        a = self.stem(self.inp(x))
        c = torch.cat([self.l(a), self.r(a)], 1)
        return self.cls(torch.cat([self.p(c), self.q(c)], 1))


class AddRequant(nn.Module):
    """A residual add of two signed 4-bit tensors (scale 1/8) re-quantized to unsigned 3 bits
    of scale 1/4: every odd sum is an exact tie, rounded half to even."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = input_quant()
        self.stem = quant_block(3, 6, 3, I4, 5, padding=1)
        self.branch = quant_block(6, 6, 3, I4, 6, padding=1)
        self.requant = make_act(QSpec("uint", 3, 0.25))
        self.cls = qnn.QuantConv2d(6, 3, 1, bias=False,
                                   weight_quant=SignedBinaryWeightPerTensorConst)

    def forward(self, x):
        a = self.stem(self.inp(x))
        return self.cls(self.requant(a + self.branch(a)))


def test_concat_of_shared_scale_tensors(tmp_path):
    torch.manual_seed(0)
    model = ConcatForks().eval()
    result, cmp = lower_and_compare(model, pixels((2, 3, 7, 5), 6), tmp_path)
    assert [n.op_type for n in result.model.graph.node].count("StreamingConcat") == 2
    assert cmp.labels_equal and cmp.passed, cmp


def test_add_of_shared_scale_tensors_with_ties(tmp_path):
    torch.manual_seed(0)
    model = AddRequant().eval()
    x = pixels((2, 3, 6, 7), 7)
    with torch.no_grad():
        a = model.stem(model.inp(x))
        sums = torch.round((a + model.branch(a)) / 0.125)
    assert (sums % 2 == 1).any()  # ties at the re-quantization do occur
    result, cmp = lower_and_compare(model, x, tmp_path)
    assert "ElementwiseAdd" in [n.op_type for n in result.model.graph.node]
    assert cmp.labels_equal and cmp.passed, cmp


class XnorReadByTwoSigns(nn.Module):
    """A -1-padded XNOR unit whose sign is read by another XNOR unit and by a residual add:
    the sign is copied for the XNOR side, so the unit's ``2 p - K`` is read by two
    thresholds."""

    def __init__(self) -> None:
        super().__init__()
        b = QSpec("binary", 1, 1.0)
        self.inp = input_quant()
        self.stem = quant_block(3, 6, 3, b, 8, padding=1)
        self.down = quant_block(6, 4, 3, b, 9)
        self.point = quant_block(4, 4, 1, b, 10)
        self.requant = make_act(b)
        self.cls = qnn.QuantConv2d(4, 3, 1, bias=False,
                                   weight_quant=SignedBinaryWeightPerTensorConst)

    def forward(self, x):
        a = self.down(F.pad(self.stem(self.inp(x)), (1, 1, 1, 1), value=-1.0))
        return self.cls(self.requant(a + self.point(a)))


def test_xnor_output_read_by_two_thresholds(tmp_path):
    torch.manual_seed(0)
    model = XnorReadByTwoSigns().eval()
    result, cmp = lower_and_compare(model, pixels((2, 3, 5, 7), 9), tmp_path)
    assert "ElementwiseAdd" in [n.op_type for n in result.model.graph.node]
    assert cmp.labels_equal and cmp.passed, cmp
