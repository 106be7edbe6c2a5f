"""A join that cannot become a hardware layer is refused with a message naming it."""

import pytest
import torch
from brevitas import nn as qnn
from brevitas.quant import SignedBinaryWeightPerTensorConst
from torch import nn

from brevitas_models.random_nets import QSpec, input_quant
from hw_gen.errors import UnmappedNodesError
from tests.lowering_check import lower_and_compare, pixels, quant_block


class MixedConcat(nn.Module):
    """A binary tensor concatenated with a 4-bit one (scale 1/4): no common integer scale."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = input_quant()
        self.stem = quant_block(3, 4, 3, QSpec("binary", 1, 1.0), 0, padding=1)
        self.multi = quant_block(4, 4, 3, QSpec("uint", 4, 0.25), 1, padding=1)
        self.mid = quant_block(8, 4, 3, QSpec("binary", 1, 1.0), 2, padding=1)
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
