"""The paper-scale network: binary ResNet backbone, binary axial attention, MBU decoder.

    backbone  8-bit stem, four Bi-Real stages (``brevitas_models.resnet``)      r1..r4  1/4..1/32
    att       RSign(r4), binary axial attention (d = w/2)                       8w      1/32
    dec3      MBU x2 -> concat RSign(r3) -> binary 3x3 block                     4w      1/16
    dec2      MBU x2 -> concat RSign(r2) -> binary 3x3 block                     2w      1/8
    dec1      MBU x2 -> concat RSign(r1) -> binary 3x3 block                     w       1/4
    up2, up1  MBU x2, MBU x2                                                     w/2     1/2, 1
    head      1x1 conv, 8-bit weights, 16-bit integer bias -> logits            classes 1

Each MBU's output shares the scale of the skip signs it is concatenated with, so the concat is
one binary tensor. The classifier's bias is an integer on the accumulator's scale: the logits
are one positive scale times ``(accumulator + bias)``, so the labels are an integer arg-max
(the lowering moves the bias before the scale and FINN's LabelSelect runs in hardware).

The full-precision twin (``binary=False``) has the same structure in float: float ResNet
units, ReLU for the signs, float MBUs, no attention (the twin of the binary attention is
counted as non-local attention by ``opcount``), a float classifier.

Input sizes: multiples of 32, at least 64 (five halvings). Each MBU keeps the dilations
(default 1-4) that are smaller than its input map's shorter side at the size the network is
built for; larger inputs run the same network, smaller ones are refused.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from brevitas_models.attention import BinaryAxialAttention
from brevitas_models.errors import ModelError
from brevitas_models.layers import BinaryConvBlock, Classifier
from brevitas_models.mbu import FloatMultiBranchUpsample, MultiBranchUpsample
from brevitas_models.nets import _FloatConvBlock
from brevitas_models.resnet import RESNET18_BLOCKS, ResNetBackbone, RSign

STRIDE = 32


def check_size(name: str, size: tuple[int, int]) -> None:
    """Refuse an input size the encoder-decoder cannot take (one line)."""
    h, w = size
    if h < 2 * STRIDE or w < 2 * STRIDE or h % STRIDE or w % STRIDE:
        raise ModelError(f"network {name!r}: input size {h}x{w} (HxW) must be a multiple of "
                         f"{STRIDE} and at least {2 * STRIDE} in both dimensions (the backbone "
                         f"halves it five times)")


class ResNetSeg(nn.Module):
    """Binary ResNet encoder-decoder (module docstring), or its full-precision twin."""

    def __init__(self, width: int, num_classes: int, binary: bool, *,
                 blocks: tuple[int, ...] = RESNET18_BLOCKS, dilations: tuple[int, ...] = (1, 2, 3, 4),
                 attention: bool = True, residual_bits: int | None = None,
                 input_size: tuple[int, int] = (512, 1024)):
        super().__init__()
        check_size("ResNetSeg", input_size)
        # an MBU keeps the dilations its input map fits (sim.kernels.mbu: d < map side)
        side = min(input_size)
        level = [tuple(d for d in dilations if d < side >> k) for k in (5, 4, 3, 2, 1)]
        if width < 2 or width % 2:
            raise ModelError(f"ResNetSeg: width must be an even integer >= 2, not {width!r}")
        self.binary = binary
        self.backbone = ResNetBackbone(width, binary, blocks, residual_bits)
        c1, c2, c3, c4 = self.backbone.widths
        half = width // 2
        if binary:
            self.skip_signs = nn.ModuleList([RSign(c) for c in (c1, c2, c3, c4)])
            s1, s2, s3, s4 = (s.act for s in self.skip_signs)
            self.att = BinaryAxialAttention(c4, max(1, width // 2),
                                            mode="axial" if attention else "none")
            top = self.att.act if attention else s4
            self.ups = nn.ModuleList([
                MultiBranchUpsample(c4, c3, top, dilations=level[0], share_act_with=s3)])
            self.decs = nn.ModuleList([BinaryConvBlock(2 * c3, c3, s3)])
            for c_in, c_out, skip, dil in ((c3, c2, s2, level[1]), (c2, c1, s1, level[2])):
                self.ups.append(MultiBranchUpsample(c_in, c_out, self.decs[-1].act,
                                                    dilations=dil, share_act_with=skip))
                self.decs.append(BinaryConvBlock(2 * c_out, c_out, skip))
            self.ups.append(MultiBranchUpsample(c1, half, self.decs[-1].act, dilations=level[3]))
            self.ups.append(MultiBranchUpsample(half, half, self.ups[-1].act, dilations=level[4],
                                                return_quant_tensor=True))
            self.head: nn.Module = Classifier(half, num_classes)
        else:
            self.skip_signs = nn.ModuleList([nn.ReLU() for _ in range(4)])
            self.att = nn.Identity()
            pairs = ((c4, c3), (c3, c2), (c2, c1), (c1, half), (half, half))
            self.ups = nn.ModuleList(FloatMultiBranchUpsample(a, b, dilations=dil)
                                     for (a, b), dil in zip(pairs, level))
            self.decs = nn.ModuleList(_FloatConvBlock(2 * c, c) for c in (c3, c2, c1))
            self.head = nn.Conv2d(half, num_classes, 1)

    def check_input(self, size: tuple[int, int]) -> None:
        """Refuse (one line) a size this network cannot run: not a multiple of 32, or maps too
        small for an upsampling block's dilations."""
        name = getattr(self, "name", "ResNetSeg")
        check_size(name, size)
        for k, up in zip((5, 4, 3, 2, 1), self.ups):
            side = min(size) >> k
            if max(up.dilations) >= side:
                raise ModelError(f"network {name!r}: input size {size[0]}x{size[1]} (HxW) leaves "
                                 f"a {side}-pixel side at 1/{1 << k}, too small for the upsampling "
                                 f"dilation {max(up.dilations)}; the smallest side it takes is "
                                 f"{(max(up.dilations) + 1) << k}")

    def forward(self, x: Tensor) -> Tensor:
        if not torch.jit.is_tracing():
            self.check_input(tuple(x.shape[-2:]))
        streams = self.backbone(x)
        skips = [sign(r) for sign, r in zip(self.skip_signs, streams)]
        d = self.att(skips[3])
        for up, dec, skip in zip(self.ups, self.decs, (skips[2], skips[1], skips[0])):
            d = dec(torch.cat([up(d), skip], 1))
        d = self.ups[4](self.ups[3](d))
        return self.head(d)
