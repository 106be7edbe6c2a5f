"""A join that cannot become a hardware layer is refused with a message naming it."""

import pytest
import torch
from brevitas import nn as qnn
from brevitas.quant import SignedBinaryWeightPerTensorConst
from torch import nn

from brevitas_models.random_nets import QSpec, input_quant, make_act
from hw_gen.errors import UnmappedNodesError
from tests.lowering_check import lower_and_compare, pixels
from tests.test_lowering_fixups_padding import _bn


def _block(cin: int, cout: int, q: QSpec, seed: int) -> nn.Sequential:
    return nn.Sequential(
        qnn.QuantConv2d(cin, cout, 3, padding=1, bias=False,
                        weight_quant=SignedBinaryWeightPerTensorConst),
        _bn(cout, seed), make_act(q))


class MixedConcat(nn.Module):
    """A binary tensor concatenated with a 4-bit one (scale 1/4): no common integer scale."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = input_quant()
        self.stem = _block(3, 4, QSpec("binary", 1, 1.0), 0)
        self.multi = _block(4, 4, QSpec("uint", 4, 0.25), 1)
        self.mid = _block(8, 4, QSpec("binary", 1, 1.0), 2)
        self.cls = qnn.QuantConv2d(4, 3, 1, bias=False,
                                   weight_quant=SignedBinaryWeightPerTensorConst)

    def forward(self, x):
        a = self.stem(self.inp(x))
        return self.cls(self.mid(torch.cat([a, self.multi(a)], 1)))


def test_concat_of_binary_and_multibit_is_refused(tmp_path):
    """The float concat (and the scale in front of it) sit between hardware layers, two
    software nodes deep: the check must follow paths, not only direct neighbours."""
    torch.manual_seed(0)
    with pytest.raises(UnmappedNodesError, match=r"Concat_\d+ \(Concat\)"):
        lower_and_compare(MixedConcat().eval(), pixels((1, 3, 6, 6), 8), tmp_path)
