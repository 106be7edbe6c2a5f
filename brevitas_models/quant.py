"""Brevitas quantizers of this project (Brevitas 0.13.4).

Each quantizer is a Brevitas injector class, passed as ``weight_quant=`` / ``act_quant=`` /
``bias_quant=`` to ``brevitas.nn`` layers. What each one computes, and the straight-through
estimator (STE) its backward pass uses:

``BinaryWeightPerChannel``
    ``w_q = s_c * sign(w)`` with ``sign(0) = +1`` and one learned scale ``s_c > 0`` per output
    channel (stored as ``log2(s_c)``, so it stays positive; initialised to ``mean|w|`` of the
    channel, as in XNOR-Net, on the first training forward). STE: ``dL/dw = s_c * dL/dw_q``
    everywhere (identity through sign). Brevitas' own ``SignedBinaryWeightPerTensorConst``
    clamps the float weights *in place* in every forward (``InplaceTensorClampSte``), which
    would rewrite the optimizer's weights behind its back; this quantizer clamps through
    ``TensorClampSte``, out of place, so the float weights change only by optimizer steps.
    Exports as QONNX ``BipolarQuant`` on the weight with a per-channel scale.

``BinaryActPerTensor``
    ``y = s * sign(x)`` with ``sign(0) = +1`` and one learned scale ``s > 0`` for the whole
    tensor (FINN refuses per-channel scales on bipolar tensors), stored as ``log2(s)``,
    initialised to 1. STE (hardtanh window): ``dL/dx = s * dL/dy`` where ``|x| <= s``, and 0
    where ``|x| > s``. Exports as QONNX ``BipolarQuant``.

``Uint8InputFixed``
    The network input: unsigned 8 bit with the fixed scale ``float32(1/255)`` and zero point 0,
    so a float input ``pixel / 255`` quantizes to the integer ``pixel`` and the board can take
    raw UINT8 pixels. Exports as QONNX ``Quant`` (8 bit, unsigned).

``Int8WeightPerTensor``
    Signed narrow-range 8-bit weights (``[-127, 127]``) with one per-tensor scale ``max|w|/127``
    for the final classifier (the paper keeps the last classifier at 8 bit). Per tensor, so that
    the classifier's logits are one positive scalar times an integer and the arg-max of the
    logits is the arg-max of integers.

``Int16Bias`` (Brevitas' own, re-exported)
    The classifier's bias, quantized to 16 bits with the scale of the accumulator it is added to
    (input scale times weight scale), so ``acc + bias`` is an integer sum.

``IntActPerTensor``
    A signed low-bit integer activation (default 4 bit) with a learned per-tensor scale, for a
    residual or skip stream: every tensor added into the stream goes through the *same*
    quantizer instance (share it with :func:`brevitas_models.layers.shared_quant_identity`), so
    all addends share one scale and the add is an integer add.

Rounding: Brevitas' integer quantizers round half to even (``torch.round``); e.g. 2.5 -> 2,
3.5 -> 4. This is left as is; the hardware lowering must reproduce half-to-even at ties
(FINN's thresholds fire on ``x >= T``, which is half up).
"""

from __future__ import annotations

import torch
from brevitas.core.bit_width import BitWidthConst
from brevitas.core.function_wrapper import TensorClampSte
from brevitas.core.utils import StatelessBuffer
from brevitas.inject.enum import RestrictValueType, ScalingImplType, ScalingPerOutputType, StatsOp
from brevitas.quant.base import (
    IntQuant,
    ParamMinMaxInitScaling,
    SignedBinaryClampedConst,
    UintQuant,
)
from brevitas.quant.scaled_int import Int8WeightPerTensorFloat, Int16Bias
from brevitas.quant.solver import ActQuantSolver, WeightQuantSolver
from torch import Tensor, nn

# The input quantizer's scale: a float input pixel/255 quantizes to the integer pixel.
PIXEL_LEVELS = 255
INPUT_BITS = 8
CLASSIFIER_WEIGHT_BITS = 8
RESIDUAL_BITS = 4

__all__ = [
    "BinaryActPerTensor",
    "BinaryWeightPerChannel",
    "Int16Bias",
    "Int8WeightPerTensor",
    "IntActPerTensor",
    "Uint8InputFixed",
]


class BinaryWeightPerChannel(SignedBinaryClampedConst, WeightQuantSolver):
    """Binary weights ``s_c * sign(w)``, learned positive per-output-channel scale ``s_c``."""

    # Out of place and straight-through: Brevitas' binary default clamps the weights in place.
    tensor_clamp_impl = TensorClampSte
    scaling_impl_type = ScalingImplType.PARAMETER_FROM_STATS
    scaling_stats_op = StatsOp.AVE
    collect_stats_steps = 1
    restrict_scaling_type = RestrictValueType.LOG_FP
    scaling_per_output_type = ScalingPerOutputType.CHANNEL
    scaling_min_val = 1e-10


class _WindowedSignSte(torch.autograd.Function):
    """``where(x >= 0, s, -s)`` with the gradients of Brevitas' ``ClampedBinaryQuant`` over a
    ``TensorClamp`` (same numbers, in 2 forward and ~8 backward element-wise ops, not ~15):
    ``dL/dx = s * g`` where ``|x| <= s``, else 0; ``dL/ds = sum(g * sign(x) * (1 + s [|x| > s]))``.
    """

    @staticmethod
    def forward(ctx, x: Tensor, scale: Tensor) -> Tensor:
        ctx.save_for_backward(x, scale)
        return torch.where(x >= 0, scale, -scale)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:
        x, scale = ctx.saved_tensors
        inside = x.abs() <= scale
        grad_x = grad * inside * scale
        signed = torch.where(x >= 0, grad, -grad)
        # sum over outside = sum over all - sum over inside
        total, within = signed.sum(), (signed * inside).sum()
        grad_scale = (total + scale * (total - within)).reshape(scale.shape)
        return grad_x, grad_scale


class WindowedBinaryQuant(nn.Module):
    """Tensor quantizer of ``BinaryActPerTensor``: ``s * sign(x)``, ``sign(0) = +1``, with the
    hardtanh-window straight-through estimator of ``_WindowedSignSte``."""

    def __init__(self, scaling_impl: nn.Module):
        super().__init__()
        self.scaling_impl = scaling_impl
        self.bit_width = BitWidthConst(1)
        self.zero_point = StatelessBuffer(torch.tensor(0.0))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        scale = self.scaling_impl(x)
        return _WindowedSignSte.apply(x, scale), scale, self.zero_point(), self.bit_width()


class BinaryActPerTensor(SignedBinaryClampedConst, ActQuantSolver):
    """Binary activations ``s * sign(x)``, learned positive per-tensor scale ``s``."""

    # Zero gradient outside [-s, s] (hardtanh STE), computed out of place.
    tensor_quant = WindowedBinaryQuant
    scaling_impl_type = ScalingImplType.PARAMETER
    restrict_scaling_type = RestrictValueType.LOG_FP
    scaling_per_output_type = ScalingPerOutputType.TENSOR
    min_val = -1.0
    max_val = 1.0


class Uint8InputFixed(UintQuant, ActQuantSolver):
    """UINT8 input with the fixed scale float32(1/255): ``x -> round(x * 255) / 255``, clamped."""

    bit_width = INPUT_BITS
    scaling_impl_type = ScalingImplType.CONST
    restrict_scaling_type = RestrictValueType.FP
    scaling_per_output_type = ScalingPerOutputType.TENSOR
    # Brevitas divides the threshold max_val by 2**8 - 1: scale = float32(1.0) / 255.
    min_val = 0.0
    max_val = 1.0


class Int8WeightPerTensor(Int8WeightPerTensorFloat):
    """Signed narrow 8-bit classifier weights, per-tensor scale ``max|w| / 127``."""

    bit_width = CLASSIFIER_WEIGHT_BITS


class IntActPerTensor(IntQuant, ParamMinMaxInitScaling, ActQuantSolver):
    """Signed ``bit_width``-bit activation, learned per-tensor scale (init: max |x| = 2)."""

    bit_width = RESIDUAL_BITS
    restrict_scaling_type = RestrictValueType.LOG_FP
    scaling_per_output_type = ScalingPerOutputType.TENSOR
    min_val = -2.0
    max_val = 2.0
