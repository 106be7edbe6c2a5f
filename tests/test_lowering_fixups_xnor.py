"""XNOR conversion where one sign reaches several XNOR units (a fork, or a concat read twice)."""

import torch
from brevitas import nn as qnn
from brevitas.quant import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst
from torch import nn

from brevitas_models.random_nets import input_quant
from tests.lowering_check import lower_and_compare, pixels


def _block(cin: int, cout: int, k: int, padding: int = 0) -> nn.Sequential:
    bn = nn.BatchNorm2d(cout)
    gen = torch.Generator().manual_seed(cin * 100 + cout)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(cout, generator=gen) * 2)
        bn.weight.copy_(torch.randn(cout, generator=gen))
        bn.bias.copy_(torch.randn(cout, generator=gen))
    return nn.Sequential(
        qnn.QuantConv2d(cin, cout, k, padding=padding, bias=False,
                        weight_quant=SignedBinaryWeightPerTensorConst),
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
