"""Nearest upsampling whose output is not the first input of its reader."""

import torch
from brevitas import nn as qnn
from brevitas.quant import SignedBinaryWeightPerTensorConst
from torch import nn

from brevitas_models.random_nets import QSpec, input_quant, make_act
from tests.lowering_check import lower_and_compare, pixels, quant_block


class UpsampleIntoSecondConcatInput(nn.Module):
    """concat(skip, upsample(down(skip))) with different channel counts per branch."""

    def __init__(self) -> None:
        super().__init__()
        b = QSpec("binary", 1, 1.0)
        self.inp = input_quant()
        self.stem = quant_block(3, 5, 1, b, 11)
        self.down = nn.Sequential(
            qnn.QuantConv2d(5, 3, 3, stride=2, padding=1, bias=False,
                            weight_quant=SignedBinaryWeightPerTensorConst),
            *list(quant_block(3, 3, 1, b, 12))[1:])
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.cls = qnn.QuantConv2d(8, 3, 1, bias=False,
                                   weight_quant=SignedBinaryWeightPerTensorConst)

    def forward(self, x):
        a = self.stem(self.inp(x))
        return self.cls(torch.cat([a, self.up(self.down(a))], 1))


def test_upsample_read_as_second_concat_input(tmp_path):
    """FINN's AbsorbTransposeIntoResize rewired input 0 of the concat to the upsampling."""
    torch.manual_seed(0)
    model = UpsampleIntoSecondConcatInput().eval()
    result, cmp = lower_and_compare(model, pixels((2, 3, 6, 8), 10), tmp_path)
    ops = [n.op_type for n in result.model.graph.node]
    assert "UpsampleNearestNeighbour" in ops and "StreamingConcat" in ops, ops
    assert cmp.labels_equal and cmp.passed, cmp


class PooledTensorReadTwice(nn.Module):
    """Max pooling whose output is read by a 1x1 conv and by the residual add after it."""

    def __init__(self) -> None:
        super().__init__()
        b = QSpec("binary", 1, 1.0)
        self.inp = input_quant()
        self.stem = quant_block(3, 5, 3, b, 13, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.point = quant_block(5, 5, 1, b, 14)
        self.requant = make_act(b)
        self.cls = qnn.QuantConv2d(5, 3, 1, bias=False,
                                   weight_quant=SignedBinaryWeightPerTensorConst)

    def forward(self, x):
        p = self.pool(self.stem(self.inp(x)))
        return self.cls(self.requant(p + self.point(p)))


def test_max_pool_read_twice(tmp_path):
    """FINN's MakeMaxPoolNHWC rewired only the first reader of the pooled tensor; the add
    then read the unpooled input."""
    torch.manual_seed(0)
    model = PooledTensorReadTwice().eval()
    result, cmp = lower_and_compare(model, pixels((2, 3, 9, 7), 14), tmp_path)
    ops = [n.op_type for n in result.model.graph.node]
    assert "ElementwiseAdd" in ops and any(op.startswith("Pool") for op in ops), ops
    assert cmp.labels_equal and cmp.passed, cmp


class UpsampledTensorReadTwice(nn.Module):
    """A nearest upsampling read by a zero-padded 3x3 conv and by the concat after it."""

    def __init__(self) -> None:
        super().__init__()
        u4 = QSpec("uint", 4, 0.25)
        self.inp = input_quant()
        self.stem = quant_block(3, 4, 3, u4, 15, padding=1)
        self.down = nn.Sequential(
            qnn.QuantConv2d(4, 4, 3, stride=2, padding=1, bias=False,
                            weight_quant=SignedBinaryWeightPerTensorConst),
            *list(quant_block(4, 4, 1, u4, 16))[1:])
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = quant_block(4, 3, 3, u4, 17, padding=1)
        self.cls = qnn.QuantConv2d(7, 3, 1, bias=False,
                                   weight_quant=SignedBinaryWeightPerTensorConst)

    def forward(self, x):
        u = self.up(self.down(self.stem(self.inp(x))))
        return self.cls(torch.cat([self.conv(u), u], 1))


def test_upsample_read_twice(tmp_path):
    """FINN's MakeScaleResizeNHWC rewired only the first reader of the upsampled tensor."""
    torch.manual_seed(0)
    model = UpsampledTensorReadTwice().eval()
    result, cmp = lower_and_compare(model, pixels((2, 3, 6, 8), 16), tmp_path)
    ops = [n.op_type for n in result.model.graph.node]
    assert "UpsampleNearestNeighbour" in ops and "StreamingConcat" in ops, ops
    assert cmp.labels_equal and cmp.passed, cmp
