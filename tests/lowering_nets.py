"""Small Brevitas networks that exercise one lowering feature each (test fixtures)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from brevitas import nn as qnn
from brevitas.inject.enum import ScalingImplType
from brevitas.quant import (
    Int8ActPerTensorFloat,
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
    Uint8ActPerTensorFloat,
)
from torch import nn


def randomize_bn(model: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in model.modules():
            if isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = bn.num_features
                bn.running_mean.copy_(torch.rand(n, generator=g) * 6 - 3)
                bn.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                bn.weight.copy_(torch.rand(n, generator=g) * 2 - 1)
                bn.bias.copy_(torch.rand(n, generator=g) * 2 - 1)
    return model.eval()


def binary_block(cin: int, cout: int, stride: int = 1, padding: int = 1) -> nn.Sequential:
    return nn.Sequential(
        qnn.QuantConv2d(cin, cout, 3, stride=stride, padding=padding, bias=False,
                        weight_quant=SignedBinaryWeightPerTensorConst),
        nn.BatchNorm2d(cout),
        qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst),
    )


class PaddedNet(nn.Module):
    """8-bit input conv, then a binary conv padded with zeros (users' style) or -1 (ours)."""

    def __init__(self, pad: str, channels: int = 8, classes: int = 4) -> None:
        super().__init__()
        self.pad = pad
        self.inp = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat)
        self.first = binary_block(3, channels)
        self.conv = binary_block(channels, channels, padding=1 if pad == "zero" else 0)
        self.cls = qnn.QuantConv2d(channels, classes, 1, bias=False,
                                   weight_quant=SignedBinaryWeightPerTensorConst)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(self.inp(x))
        if self.pad == "minus1":
            x = F.pad(x, (1, 1, 1, 1), value=-1.0)
        return self.cls(self.conv(x))


class SkipNet(nn.Module):
    """Encoder, stride-2 conv, nearest x2 upsampling, an add or concat skip, classifier."""

    def __init__(self, join: str, channels: int = 8, classes: int = 4) -> None:
        super().__init__()
        c = channels
        self.join = join
        self.inp = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat)
        self.e0, self.down, self.e1 = binary_block(3, c), binary_block(c, c, 2), binary_block(c, c)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.requant = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
        self.dec = binary_block(c if join == "add" else 2 * c, c)
        self.cls = qnn.QuantConv2d(c, classes, 1, bias=False,
                                   weight_quant=SignedBinaryWeightPerTensorConst)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.e0(self.inp(x))
        u = self.up(self.e1(self.down(a)))
        j = self.requant(u + a) if self.join == "add" else torch.cat([u, a], 1)
        return self.cls(self.dec(j))


class FloatInTheMiddle(nn.Module):
    """A float sigmoid between binary layers: cannot become hardware."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat)
        self.a = binary_block(3, 4)
        self.b = binary_block(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.sigmoid(self.a(self.inp(x))))


def pixels(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Random 8-bit pixels as the float input the models take (k / 255)."""
    return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed)) / 255.0


class _Relu3Pow2(Uint8ActPerTensorFloat):
    """Unsigned 3-bit activation with the constant scale 1 (a power of two)."""

    bit_width = 3
    scaling_impl_type = ScalingImplType.CONST
    scaling_const = 7.0
    max_val = 7.0


class _Int4Pow2(Int8ActPerTensorFloat):
    """Signed 4-bit activation with the constant scale 0.5."""

    bit_width = 4
    scaling_impl_type = ScalingImplType.CONST
    scaling_const = 4.0
    min_val = -4.0
    max_val = 4.0


class _BinaryWeightUnit(SignedBinaryWeightPerTensorConst):
    """Binary weights with the constant scale 1."""

    scaling_const = 1.0


class TieNet(nn.Module):
    """Multi-bit activations whose inputs land exactly on rounding ties: power-of-two scales
    and batch-norm terms that are exact in float (eps = 0, var = 1, dyadic gamma and beta)."""

    def __init__(self, channels: int = 6, classes: int = 4) -> None:
        super().__init__()
        c = channels
        self.inp = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat)
        self.c0 = qnn.QuantConv2d(3, c, 3, bias=False, weight_quant=SignedBinaryWeightPerTensorConst)
        self.b0 = nn.BatchNorm2d(c)
        self.a0 = qnn.QuantReLU(act_quant=_Relu3Pow2)
        self.c1 = qnn.QuantConv2d(c, c, 3, bias=False, weight_quant=_BinaryWeightUnit)
        self.b1 = nn.BatchNorm2d(c, eps=0.0)
        self.a1 = qnn.QuantReLU(act_quant=_Relu3Pow2)
        self.c2 = qnn.QuantConv2d(c, c, 1, bias=False, weight_quant=_BinaryWeightUnit)
        self.b2 = nn.BatchNorm2d(c, eps=0.0)
        self.a2 = qnn.QuantIdentity(act_quant=_Int4Pow2)
        self.cls = qnn.QuantConv2d(c, classes, 1, bias=False,
                                   weight_quant=SignedBinaryWeightPerTensorConst)
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for bn in (self.b1, self.b2):
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0)
                bn.weight.copy_(torch.tensor([0.5, 0.25, 0.5, 1.0, 0.5, 0.25][:c]))
                bn.bias.copy_(torch.randint(-4, 5, (c,), generator=g) * 0.25)

    def pre_activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The values the two tie-prone quantizers see, divided by their scales."""
        a0 = self.a0(self.b0(self.c0(self.inp(x))))
        y1 = self.b1(self.c1(a0))
        a1 = self.a1(y1)
        y2 = self.b2(self.c2(a1))
        return [y1 / 1.0, y2 / 0.5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.a0(self.b0(self.c0(self.inp(x))))
        x = self.a1(self.b1(self.c1(x)))
        x = self.a2(self.b2(self.c2(x)))
        return self.cls(x)


class BilinearNet(nn.Module):
    """A stride-2 binary conv, bilinear x2 upsampling, a sign and a padded binary conv."""

    def __init__(self, channels: int = 4, classes: int = 3) -> None:
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat)
        self.down = binary_block(3, channels, stride=2)
        self.sign = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
        self.conv = binary_block(channels, channels)
        self.cls = qnn.QuantConv2d(channels, classes, 1, bias=False,
                                   weight_quant=SignedBinaryWeightPerTensorConst)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(self.inp(x))
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return self.cls(self.conv(self.sign(x)))


class BroadcastAddNet(nn.Module):
    """A residual add of a 1x1 map (max pool, then a 3x3 conv without padding) over the
    full 9x9 map it came from: FINN's ElementwiseAdd with broadcasting."""

    def __init__(self, channels: int = 8, classes: int = 4) -> None:
        super().__init__()
        c = channels
        self.inp = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat)
        self.e0 = binary_block(3, c)
        self.squeeze = binary_block(c, c, padding=0)
        self.requant = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
        self.cls = qnn.QuantConv2d(c, classes, 1, bias=False,
                                   weight_quant=SignedBinaryWeightPerTensorConst)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.e0(self.inp(x))
        g = self.squeeze(F.max_pool2d(a, 3))  # 9x9 -> 3x3 -> 1x1
        return self.cls(self.requant(a + g))
