"""Building blocks of the binary networks, on the quantizers of :mod:`brevitas_models.quant`.

Binary activations have no zero: a ``BinaryConvBlock`` with ``padding="minus_one"`` pads its
binary input explicitly with ``-s`` (the integer -1; ``s`` = the scale of the activation that
produced the input) before an unpadded conv, which exports as an ONNX ``Pad`` node with the
constant ``-s``. ``padding="zero"`` puts ``padding=`` on the conv, as stock Brevitas models do.
"""

from __future__ import annotations

import warnings
from typing import Literal

import brevitas.nn as qnn
from brevitas.quant_tensor import QuantTensor
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brevitas_models.errors import ModelError
from brevitas_models.quant import (
    BinaryActPerTensor,
    BinaryWeightPerChannel,
    Int8WeightPerTensor,
    Int16Bias,
    Uint8InputFixed,
)

Padding = Literal["minus_one", "zero"]
PADDINGS = ("minus_one", "zero")


def shared_quant_identity(act_quant: type | qnn.QuantIdentity, **kwargs) -> qnn.QuantIdentity:
    """A ``QuantIdentity`` with the quantizer class ``act_quant``, or sharing the quantizer
    (and so the scale) of an existing ``QuantIdentity``."""
    if isinstance(act_quant, qnn.QuantIdentity):
        with warnings.catch_warnings():
            # Brevitas mistakes QuantIdentity's own act_impl=None for a quantizer keyword.
            warnings.filterwarnings("ignore", message="Keyword arguments are being passed")
            return qnn.QuantIdentity(act_quant=act_quant.act_quant, **kwargs)
    return qnn.QuantIdentity(act_quant=act_quant, **kwargs)


class BinaryAct(nn.Module):
    """``s * sign(x)`` with a learned per-tensor scale ``s`` (``BinaryActPerTensor``).

    ``share_with``: use the quantizer (and scale) of another ``BinaryAct``, e.g. for tensors that
    are concatenated. ``return_quant_tensor``: return a Brevitas ``QuantTensor`` (needed in
    front of a layer with a quantized bias).
    """

    def __init__(self, share_with: BinaryAct | None = None, return_quant_tensor: bool = False):
        super().__init__()
        source = share_with.quant if share_with is not None else BinaryActPerTensor
        self.quant = shared_quant_identity(source, return_quant_tensor=return_quant_tensor)

    def scale(self) -> Tensor:
        """The current scale ``s`` (a 1-element tensor)."""
        tensor_quant = self.quant.act_quant.fused_activation_quant_proxy.tensor_quant
        return tensor_quant.scaling_impl(self.quant.act_quant._zero_hw_sentinel())

    def forward(self, x: Tensor) -> Tensor:
        return self.quant(x)


class _TracedPad(torch.autograd.Function):
    """Constant padding that exports as one ONNX ``Pad`` node with constant inputs (torch's
    own export of ``F.pad`` computes the pads through six nodes, slow to fold away)."""

    @staticmethod
    def forward(ctx, x: Tensor, amount: int, value: float) -> Tensor:
        return F.pad(x, (amount,) * 4, mode="constant", value=value)

    @staticmethod
    def symbolic(g, x, amount: int, value: float):
        pads = torch.tensor([0, 0, amount, amount, 0, 0, amount, amount], dtype=torch.int64)
        constant = torch.tensor(value, dtype=torch.float32)
        return g.op(
            "Pad", x, g.op("Constant", value_t=pads), g.op("Constant", value_t=constant), mode_s="constant"
        )


class MinusOnePad(nn.Module):
    """Pads a binary tensor (values ``+-s``) on all four sides with ``-s``, the integer -1.

    ``source`` is the ``BinaryAct`` that produced the tensor; it is referenced, not owned.
    """

    def __init__(self, amount: int, source: BinaryAct):
        super().__init__()
        self.amount = amount
        self._source = (source,)

    def forward(self, x: Tensor) -> Tensor:
        if self.amount == 0:
            return x
        with torch.no_grad():
            value = -float(self._source[0].scale().item())
        if torch.jit.is_tracing():
            return _TracedPad.apply(x, self.amount, value)
        return F.pad(x, (self.amount,) * 4, mode="constant", value=value)

    def extra_repr(self) -> str:
        return f"amount={self.amount}, value=-scale"


def binary_conv2d(
    in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> qnn.QuantConv2d:
    """A conv with binary per-channel-scaled weights, no bias, float (unquantized) output."""
    return qnn.QuantConv2d(
        in_ch,
        out_ch,
        kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        bias=False,
        weight_quant=BinaryWeightPerChannel,
    )


class BinaryConvBlock(nn.Module):
    """pad -> binary conv (no bias) -> BatchNorm2d -> ``BinaryAct``.

    ``in_act`` is the ``BinaryAct`` that produced the input (required for
    ``padding="minus_one"``, whose pad value is ``-in_act.scale()``). The output activation is
    ``self.act``; ``share_act_with`` makes it share the scale of another ``BinaryAct``.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        in_act: BinaryAct | None,
        *,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        padding: Padding = "minus_one",
        share_act_with: BinaryAct | None = None,
        return_quant_tensor: bool = False,
    ):
        super().__init__()
        if padding not in PADDINGS:
            raise ModelError(f"BinaryConvBlock: padding must be one of {PADDINGS}, got {padding!r}")
        amount = dilation * (kernel_size - 1) // 2
        if padding == "minus_one":
            if in_act is None and amount > 0:
                raise ModelError("BinaryConvBlock: padding='minus_one' needs in_act (the input's scale)")
            self.pad: nn.Module = MinusOnePad(amount, in_act) if amount else nn.Identity()
            conv_padding = 0
        else:
            self.pad = nn.Identity()
            conv_padding = amount
        self.conv = binary_conv2d(in_ch, out_ch, kernel_size, stride, conv_padding, dilation)
        self.bn = nn.BatchNorm2d(out_ch)
        self.act = BinaryAct(share_with=share_act_with, return_quant_tensor=return_quant_tensor)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(self.pad(x))))


class InputBlock(nn.Module):
    """UINT8 input quantizer (scale 1/255) -> binary-weight 3x3 conv (zero padding: the pixel
    value 0) -> BatchNorm2d -> ``BinaryAct``. Takes float input in [0, 1] = pixel / 255."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3):
        super().__init__()
        self.quant = qnn.QuantIdentity(act_quant=Uint8InputFixed, return_quant_tensor=False)
        self.conv = binary_conv2d(in_ch, out_ch, kernel_size, padding=(kernel_size - 1) // 2)
        self.bn = nn.BatchNorm2d(out_ch)
        self.act = BinaryAct()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(self.quant(x))))


class Classifier(nn.Module):
    """Per-pixel classifier: 1x1 conv with 8-bit per-tensor weights and a 16-bit bias on the
    accumulator's scale; float logits out. Its input must be a Brevitas ``QuantTensor``
    (build the ``BinaryAct`` in front of it with ``return_quant_tensor=True``)."""

    def __init__(self, in_ch: int, num_classes: int):
        super().__init__()
        self.conv = qnn.QuantConv2d(
            in_ch,
            num_classes,
            1,
            bias=True,
            weight_quant=Int8WeightPerTensor,
            bias_quant=Int16Bias,
            return_quant_tensor=False,
        )

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, QuantTensor):
            raise ModelError(
                "Classifier: input must be a Brevitas QuantTensor (its bias is quantized on the "
                "input scale); build the BinaryAct before it with return_quant_tensor=True"
            )
        return self.conv(x)
