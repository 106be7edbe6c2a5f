"""A small network with 2-bit activations for the RTL simulation tests: padded 3x3 convs
(FINN's padding and sliding-window RTL), two residual adds, each re-quantized by a
standalone threshold (FINN's thresholding RTL; the two requantize to different scales, so their
thresholds differ), and a classifier."""

from __future__ import annotations

import torch
from brevitas import nn as qnn
from brevitas.quant import Int8WeightPerTensorFloat
from torch import nn

from brevitas_models.random_nets import _int_act_quant, input_quant
from lowering_nets import randomize_bn


def _conv(cin: int, cout: int, k: int = 3) -> qnn.QuantConv2d:
    return qnn.QuantConv2d(cin, cout, k, padding=k // 2, bias=False,
                           weight_quant=Int8WeightPerTensorFloat, weight_bit_width=2)


def _act2() -> qnn.QuantReLU:
    return qnn.QuantReLU(act_quant=_int_act_quant(False, 2, 3.0))  # 0, 1, 2, 3


class TwoBitNet(nn.Module):
    def __init__(self, channels: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.inp = input_quant()
        self.c1, self.b1, self.a1 = _conv(3, channels), nn.BatchNorm2d(channels), _act2()
        self.c2, self.b2, self.a2 = _conv(channels, channels), nn.BatchNorm2d(channels), _act2()
        self.j1 = _act2()
        self.c3, self.b3, self.a3 = _conv(channels, channels), nn.BatchNorm2d(channels), _act2()
        # scale 1.5: no sum of two integers lands on a rounding tie
        self.j2 = qnn.QuantReLU(act_quant=_int_act_quant(False, 2, 4.5))
        self.cls = qnn.QuantConv2d(channels, classes, 1, bias=False,
                                   weight_quant=Int8WeightPerTensorFloat, weight_bit_width=8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.a1(self.b1(self.c1(self.inp(x))))
        b = self.a2(self.b2(self.c2(a)))
        j = self.j1(a + b)
        c = self.a3(self.b3(self.c3(j)))
        return self.cls(self.j2(j + c))


def two_bit_net(seed: int = 5) -> TwoBitNet:
    torch.manual_seed(seed)
    return randomize_bn(TwoBitNet(), seed)
