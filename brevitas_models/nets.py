"""Networks, built by name through a small registry.

``build(name, width=..., num_classes=...)``; ``NETWORKS`` lists the names:

``demo``            binary encoder-decoder for segmentation (below), 8-bit input layer, binary
                    3x3 blocks, -1 padding, binary axial attention at the lowest resolution,
                    8-bit classifier.
``demo_fp``         its full-precision twin: the same architecture with float convs, ReLU and
                    zero padding, float input and classifier.
``pixel_baseline``  a per-pixel classifier (1x1 convs only): it cannot see context.

``register(name, factory, default_width)`` adds a network.

Every network takes float input N x 3 x H x W in [0, 1] (pixel / 255), returns logits
N x num_classes x H x W, and carries ``name``, ``width``, ``num_classes`` and ``input_size``
(the H, W it is meant for; any size divisible by 8, at least 16, works for the encoder-decoders).

The encoder-decoder (``width`` = w, spatial size at each stage in brackets):

    stem     UINT8 quant, 3x3 conv (binary weights over 8-bit pixels), BN, sign     w   [H]
    enc1     3x3 stride 2, 3x3                                                     2w  [H/2]
    enc2     3x3 stride 2, 3x3                                                     4w  [H/4]
    ctx      3x3 stride 2, 3x3 dilation 2                                          4w  [H/8]
    att      binary axial attention (``attention=`` a BinaryAxialAttention mode,    4w  [H/8]
             d = w/2; "axial" for ``demo``, "none" = absent; binary networks only)
    dec2     nearest x2, concat enc2, 3x3                                          2w  [H/4]
    dec1     nearest x2, concat enc1, 3x3                                          w   [H/2]
    dec0     MBU x2 (below), concat stem, 3x3                                      w   [H]
    head     1x1 conv, 8-bit weights, 16-bit bias -> logits

MBU: the paper's multi-branch parallel upsampling (``brevitas_models.mbu``, default K=4
dilations 1-4, fixed-point sigmoid gates, bilinear; its float twin in ``demo_fp``); with
``EncoderDecoder(..., mbu=False)`` dec0 upsamples nearest like the others;
``mbu_branches=K`` keeps the first K branches (dilations 1..K). Dilation 4 needs a
map larger than 4 at H/2: inputs of at least 16 x 16.

The skip connections are channel concatenations of binary tensors. The two tensors of each
concat share one activation quantizer (one scale), so the concat is a plain binary tensor.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from brevitas_models.attention import BinaryAxialAttention
from brevitas_models.data.synthetic import NUM_CLASSES
from brevitas_models.errors import ModelError
from brevitas_models.layers import BinaryAct, BinaryConvBlock, Classifier, InputBlock
from brevitas_models.mbu import FloatMultiBranchUpsample, MultiBranchUpsample

DEFAULT_INPUT_SIZE = (64, 64)
DEFAULT_WIDTHS = {"demo": 16, "demo_fp": 16, "pixel_baseline": 32}


class _FloatConvBlock(nn.Module):
    """Full-precision twin of ``BinaryConvBlock``: conv (zero padding, no bias), BN, ReLU."""

    def __init__(self, in_ch: int, out_ch: int, *, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, stride, dilation, dilation, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class EncoderDecoder(nn.Module):
    """The demo architecture (see the module docstring), binary or full precision."""

    def __init__(self, width: int, num_classes: int, binary: bool, mbu: bool = True,
                 attention: str = "none", mbu_branches: int = 4):
        super().__init__()
        w = width
        self.binary = binary
        if attention != "none" and not binary:
            raise ModelError("EncoderDecoder: attention is a block of the binary network")
        if isinstance(mbu_branches, bool) or not isinstance(mbu_branches, int) or mbu_branches < 1:
            raise ModelError(f"EncoderDecoder: mbu_branches must be a positive integer, "
                             f"not {mbu_branches!r}")
        dilations = tuple(range(1, mbu_branches + 1))
        if binary:
            self.stem = InputBlock(3, w)

            def block(in_ch, out_ch, in_act: BinaryAct, **kw) -> BinaryConvBlock:
                return BinaryConvBlock(in_ch, out_ch, in_act, **kw)

        else:
            self.stem = _FloatConvBlock(3, w)

            def block(in_ch, out_ch, in_act, share_act_with=None, return_quant_tensor=False, **kw):
                return _FloatConvBlock(in_ch, out_ch, **kw)

        self.down1 = block(w, 2 * w, self.stem.act, stride=2)
        self.enc1 = block(2 * w, 2 * w, self.down1.act)
        self.down2 = block(2 * w, 4 * w, self.enc1.act, stride=2)
        self.enc2 = block(4 * w, 4 * w, self.down2.act)
        self.down3 = block(4 * w, 4 * w, self.enc2.act, stride=2)
        # each decoder input is a concat: the tensor upsampled into it shares the skip's scale
        self.ctx = block(4 * w, 4 * w, self.down3.act, dilation=2, share_act_with=self.enc2.act)
        # the attention output is concatenated with e2 as well: it shares enc2's scale
        self.att = BinaryAxialAttention(4 * w, max(1, w // 2), mode=attention,
                                        share_act_with=self.enc2.act if binary else None)
        self.dec2 = block(8 * w, 2 * w, self.enc2.act, share_act_with=self.enc1.act)
        self.dec1 = block(4 * w, w, self.enc1.act, share_act_with=self.stem.act)
        self.dec0 = block(2 * w, w, self.stem.act, return_quant_tensor=binary)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        # mbu: the decoder's last x2 is the paper's multi-branch parallel upsampling block
        # (its float twin in the full-precision network), else nearest like the others
        self.mbu: nn.Module | None = None
        if mbu and binary:
            self.mbu = MultiBranchUpsample(w, w, self.dec1.act, dilations=dilations,
                                           share_act_with=self.stem.act)
        elif mbu:
            self.mbu = FloatMultiBranchUpsample(w, w, dilations=dilations)
        if binary:
            self.head: nn.Module = Classifier(w, num_classes)
        else:
            self.head = nn.Conv2d(w, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        e0 = self.stem(x)
        e1 = self.enc1(self.down1(e0))
        e2 = self.enc2(self.down2(e1))
        c = self.att(self.ctx(self.down3(e2)))
        d2 = self.dec2(torch.cat([self.up(c), e2], 1))
        d1 = self.dec1(torch.cat([self.up(d2), e1], 1))
        d0 = self.dec0(torch.cat([self.up(d1) if self.mbu is None else self.mbu(d1), e0], 1))
        return self.head(d0)


class PixelBaseline(nn.Module):
    """Three 1x1 convs (float, BN, ReLU): a per-pixel classifier without context."""

    def __init__(self, width: int, num_classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, num_classes, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


Factory = Callable[[int, int], nn.Module]  # (width, num_classes) -> network

NETWORKS: dict[str, Factory] = {
    "demo": lambda width, num_classes: EncoderDecoder(width, num_classes, binary=True,
                                                      attention="axial"),
    "demo_fp": lambda width, num_classes: EncoderDecoder(width, num_classes, binary=False),
    "pixel_baseline": PixelBaseline,
}


def register(name: str, factory: Factory, default_width: int) -> None:
    """Add a network to the registry (``factory(width, num_classes)`` builds it)."""
    if name in NETWORKS:
        raise ModelError(f"network {name!r} is already registered")
    NETWORKS[name] = factory
    DEFAULT_WIDTHS[name] = default_width


def build(
    name: str,
    width: int | None = None,
    num_classes: int = NUM_CLASSES,
    input_size: tuple[int, int] = DEFAULT_INPUT_SIZE,
) -> nn.Module:
    """The network ``name`` with base width ``width`` (default per network) and
    ``num_classes`` outputs; raises ``ModelError`` for an unknown name or a bad size."""
    if name not in NETWORKS:
        raise ModelError(f"unknown network {name!r}; known: {', '.join(NETWORKS)}")
    width = DEFAULT_WIDTHS[name] if width is None else width
    for what, value in (("width", width), ("num_classes", num_classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ModelError(f"network {name!r}: {what} must be a positive integer, got {value!r}")
    model = NETWORKS[name](width, num_classes)
    model.name, model.width, model.num_classes = name, width, num_classes
    model.input_size = tuple(input_size)
    return model
