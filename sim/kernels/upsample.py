"""Folded upsampling by 2^k, nearest or bilinear: the definition of our FoldedUpsample layer.

Bilinear follows torch's ``align_corners=False`` coordinates: output index ``o`` of an axis
upsampled by ``F`` reads source ``s = (o + 0.5) / F - 0.5``, clamped at 0, from input rows
``floor(s)`` and ``floor(s) + 1`` (the last row repeats at the far border). With ``F = 2^k``
the fraction of ``s`` is a multiple of ``1 / (2F)``, so each axis has integer weights summing
to ``2F`` and the layer outputs the unnormalized integer sum, ``(2F)^2`` times torch's value;
the ``1 / (2F)^2`` goes into the downstream thresholds.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sim.bundle import Node
from sim.kernels import register


class AxisTaps(NamedTuple):
    """Per output index: the two source indices and their integer weights (sum ``2F``)."""

    first: np.ndarray
    second: np.ndarray
    w_first: np.ndarray
    w_second: np.ndarray


def check_factor(factor: int, mode: str) -> None:
    if mode not in ("nearest", "bilinear"):
        raise ValueError(f"upsampling mode must be nearest or bilinear, not {mode!r}")
    if factor < 1 or (mode == "bilinear" and factor & (factor - 1)):
        raise ValueError(f"bilinear upsampling needs a factor 2^k, not {factor}")


def axis_taps(n_in: int, factor: int) -> AxisTaps:
    """Bilinear taps along one axis of ``n_in`` samples upsampled by ``factor`` (2^k)."""
    check_factor(factor, "bilinear")
    o = np.arange(n_in * factor)
    num = 2 * o + 1 - factor  # s = num / (2F)
    num = np.maximum(num, 0)
    first = num // (2 * factor)
    w_second = num % (2 * factor)
    second = np.minimum(first + 1, n_in - 1)
    w_first = 2 * factor - w_second
    return AxisTaps(first, second, w_first, w_second)


def nearest(x: np.ndarray, factor: int) -> np.ndarray:
    """``x``: (N, H, W, C) -> (N, H*F, W*F, C)."""
    return np.repeat(np.repeat(x, factor, axis=1), factor, axis=2)


def bilinear_sum(x: np.ndarray, factor: int) -> np.ndarray:
    """``x``: integer (N, H, W, C) -> the unnormalized integer bilinear sum, int64."""
    x = np.asarray(x, dtype=np.int64)
    rows = axis_taps(x.shape[1], factor)
    cols = axis_taps(x.shape[2], factor)
    vert = (rows.w_first[None, :, None, None] * x[:, rows.first]
            + rows.w_second[None, :, None, None] * x[:, rows.second])
    return (cols.w_first[None, None, :, None] * vert[:, :, cols.first]
            + cols.w_second[None, None, :, None] * vert[:, :, cols.second])


def upsample(x: np.ndarray, factor: int, mode: str) -> np.ndarray:
    check_factor(factor, mode)
    return nearest(x, factor) if mode == "nearest" else bilinear_sum(x, factor)


def bilinear_gain(factor: int) -> int:
    """What the bilinear sum is multiplied by against the normalized interpolation."""
    return (2 * factor) ** 2


@register("FoldedUpsample")
def folded_upsample(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return upsample(inputs[0], int(node.attr("Factor")), str(node.attr("Mode")))
