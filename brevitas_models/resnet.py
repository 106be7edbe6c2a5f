"""Binary ResNet backbone (Bi-Real / ReActNet style) with an integer residual stream.

The residual stream ``r`` of a stage is a signed low-bit integer tensor (``IntActPerTensor``,
default 4 bit) with one scale shared by every tensor added into it, so each residual add is an
integer add in hardware. One Bi-Real unit (a ResNet basic block has two):

    b  = RSign(r)                     per-channel learned shift, then s * sign (ReActNet)
    y  = Q_r(BN(binconv3x3(pad_-1(b))))
    r' = Q_r(y + r)                    integer add, re-quantized (clipped) by the same quantizer

A strided unit (first of stages 2-4) changes width and resolution; its shortcut is a binary
1x1 stride-2 conv on the same signs ``b`` (Bi-Real's real-valued avg-pool + 1x1 conv is not
integer), both branches quantized by the next stage's quantizer. The stem is 8 bit: UINT8
pixels, a 3x3 stride-2 conv with 8-bit weights, BN, the first stage's quantizer, a 2x2 max
pool: the stream enters stage 1 at 1/4 resolution, like ResNet's 7x7 conv and 3x3 pool.

``binary=False`` builds the full-precision twin: float convs, ReLU in place of the signs, zero
padding, float adds, float stem.
"""

from __future__ import annotations

import brevitas.nn as qnn
import torch
from torch import Tensor, nn

from brevitas_models.errors import ModelError
from brevitas_models.layers import BinaryAct, MinusOnePad, binary_conv2d, shared_quant_identity
from brevitas_models.quant import Int8WeightPerTensor, IntActPerTensor, Uint8InputFixed

RESNET18_BLOCKS = (2, 2, 2, 2)


class RSign(nn.Module):
    """ReActNet's learnable-threshold sign: ``BinaryAct(x + shift_c)``, one shift per channel
    (folds into the sign's threshold in hardware)."""

    def __init__(self, channels: int, return_quant_tensor: bool = False):
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.act = BinaryAct(return_quant_tensor=return_quant_tensor)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x + self.shift)


class BiRealUnit(nn.Module):
    """One residual unit of the integer stream (module docstring). ``quant_in`` is the
    ``QuantIdentity`` of the incoming stream; ``quant_out`` that of the outgoing one (the same
    for an unstrided unit)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, quant_out: qnn.QuantIdentity):
        super().__init__()
        if stride not in (1, 2) or (stride == 1 and in_ch != out_ch):
            raise ModelError(f"BiRealUnit: stride {stride} from {in_ch} to {out_ch} channels")
        self.sign = RSign(in_ch)
        self.pad = MinusOnePad(1, self.sign.act)
        self.conv = binary_conv2d(in_ch, out_ch, 3, stride)
        self.bn = nn.BatchNorm2d(out_ch)
        self.q_main = shared_quant_identity(quant_out)
        self.shortcut: nn.Module | None = None
        if stride == 2:
            self.shortcut = nn.Sequential(binary_conv2d(in_ch, out_ch, 1, 2), nn.BatchNorm2d(out_ch),
                                          shared_quant_identity(quant_out))
        self.q_sum = shared_quant_identity(quant_out)

    def forward(self, r: Tensor) -> Tensor:
        b = self.sign(r)
        y = self.q_main(self.bn(self.conv(self.pad(b))))
        short = r if self.shortcut is None else self.shortcut(b)
        return self.q_sum(y + short)


class FloatUnit(nn.Module):
    """The unit's full-precision twin: ``r + BN(conv3x3(ReLU(r)))``; strided: the shortcut is a
    float 1x1 stride-2 conv and BN on ``ReLU(r)``."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.act = nn.ReLU()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.shortcut: nn.Module | None = None
        if stride == 2:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, 2, bias=False),
                                          nn.BatchNorm2d(out_ch))

    def forward(self, r: Tensor) -> Tensor:
        b = self.act(r)
        return self.bn(self.conv(b)) + (r if self.shortcut is None else self.shortcut(b))


class Stem(nn.Module):
    """8-bit stem (module docstring); ``binary=False``: float conv, BN, ReLU, max pool."""

    def __init__(self, out_ch: int, quant_out: qnn.QuantIdentity | None):
        super().__init__()
        if quant_out is not None:
            self.quant: nn.Module = qnn.QuantIdentity(act_quant=Uint8InputFixed)
            self.conv: nn.Module = qnn.QuantConv2d(3, out_ch, 3, 2, 1, bias=False,
                                                   weight_quant=Int8WeightPerTensor)
            self.act: nn.Module = shared_quant_identity(quant_out)
        else:
            self.quant = nn.Identity()
            self.conv = nn.Conv2d(3, out_ch, 3, 2, 1, bias=False)
            self.act = nn.ReLU()
        self.bn = nn.BatchNorm2d(out_ch)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.act(self.bn(self.conv(self.quant(x)))))


class ResNetBackbone(nn.Module):
    """Stem and four stages of widths w, 2w, 4w, 8w at 1/4 .. 1/32 of the input; ``blocks``
    basic blocks (two units each) per stage. ``forward`` returns the four stage outputs
    (integer streams; float in the twin)."""

    def __init__(self, width: int, binary: bool, blocks: tuple[int, ...] = RESNET18_BLOCKS,
                 residual_bits: int | None = None):
        super().__init__()
        if len(blocks) != 4 or any(not isinstance(b, int) or b < 1 for b in blocks):
            raise ModelError(f"ResNetBackbone: blocks {blocks} must be four positive integers")
        self.binary = binary
        widths = [width, 2 * width, 4 * width, 8 * width]
        self.widths = widths
        quants: list[qnn.QuantIdentity | None] = []
        for _ in widths:
            if binary:
                quant = (IntActPerTensor if residual_bits is None
                         else IntActPerTensor.let(bit_width=residual_bits))
                quants.append(qnn.QuantIdentity(act_quant=quant))
            else:
                quants.append(None)
        # the stage quantizers own the scales; the units hold shared copies of them
        self.stage_quants = nn.ModuleList([q for q in quants if q is not None])
        self.stem = Stem(width, quants[0])
        stages = []
        in_ch = width
        for i, (out_ch, n) in enumerate(zip(widths, blocks)):
            units = []
            for j in range(2 * n):
                stride = 2 if (i > 0 and j == 0) else 1
                units.append(BiRealUnit(in_ch, out_ch, stride, quants[i]) if binary
                             else FloatUnit(in_ch, out_ch, stride))
                in_ch = out_ch
            stages.append(nn.Sequential(*units))
        self.stages = nn.ModuleList(stages)

    def forward(self, x: Tensor) -> list[Tensor]:
        r = self.stem(x)
        outs = []
        for stage in self.stages:
            r = stage(r)
            outs.append(r)
        return outs
