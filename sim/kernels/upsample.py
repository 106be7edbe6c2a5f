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


def nearest(x: np.ndarray, factor: int, axes: tuple[int, int] = (1, 2)) -> np.ndarray:
    """``x``: (N, H, W, C) -> (N, H*F, W*F, C) (or along other ``axes``)."""
    return np.repeat(np.repeat(x, factor, axis=axes[0]), factor, axis=axes[1])


def bilinear_sum(x: np.ndarray, factor: int, int16_fits: bool = False,
                 axes: tuple[int, int] = (1, 2)) -> np.ndarray:
    """``x``: integer (N, H, W, C) -> the unnormalized integer bilinear sum (along ``axes``),
    in ``x``'s type when it is int32 or int64 (the caller bounds it: ``(2F)^2 max|x|``), or
    int16 where the caller says the sum fits it, else int64."""
    x = np.asarray(x)
    if x.dtype not in ((np.int16,) if int16_fits else ()) + (np.int32, np.int64):
        x = x.astype(np.int64)
    return _axis_sum(_axis_sum(x, factor, axes[0]), factor, axes[1])


def _axis_sum(x: np.ndarray, factor: int, axis: int) -> np.ndarray:
    """Bilinear taps along one axis (the rule of :func:`axis_taps`), one output phase
    ``p = o mod F`` at a time. With ``off = 2p + 1 - F``, output ``F i + p`` reads rows i and
    i + 1 with weights ``2F - off``, ``off`` (off >= 0), or rows i - 1 and i with weights
    ``-off``, ``2F + off``, indices clamped to the axis: every phase is one sum of two shifted
    reads of the input times a weight (each weighted copy made once) over the rows where no
    index is clamped, and a row or two at the borders; no gather."""
    n = x.shape[axis]

    def along(a: np.ndarray, index: slice) -> np.ndarray:
        sl = [slice(None)] * a.ndim
        sl[axis] = index
        return a[tuple(sl)]

    weighted: dict[int, np.ndarray] = {}

    def times(weight: int) -> np.ndarray:
        if weight not in weighted:
            weighted[weight] = x if weight == 1 else x * x.dtype.type(weight)
        return weighted[weight]

    shape = list(x.shape)
    shape[axis] = n * factor
    out = np.empty(shape, dtype=x.dtype)
    for phase in range(factor):
        off = 2 * phase + 1 - factor
        taps = ((0, 2 * factor - off), (1, off)) if off >= 0 else ((-1, -off), (0, 2 * factor + off))
        taps = [(by, weight) for by, weight in taps if weight]
        target = along(out, slice(phase, None, factor))
        lo = max(0, -min(by for by, _ in taps))
        hi = n - max(0, max(by for by, _ in taps))
        if hi > lo:  # no index clamped: one pass
            sources = [along(times(weight), slice(lo + by, hi + by)) for by, weight in taps]
            if len(sources) == 1:
                np.copyto(along(target, slice(lo, hi)), sources[0])
            else:
                np.add(sources[0], sources[1], out=along(target, slice(lo, hi)))
        for i in list(range(min(lo, n))) + list(range(max(hi, lo), n)):
            t = along(target, slice(i, i + 1))
            for j, (by, weight) in enumerate(taps):
                k = min(max(i + by, 0), n - 1)
                v = along(times(weight), slice(k, k + 1))
                if j == 0:
                    np.copyto(t, v)
                else:
                    t += v
    return out


def upsample(x: np.ndarray, factor: int, mode: str, int16_fits: bool = False,
             axes: tuple[int, int] = (1, 2)) -> np.ndarray:
    check_factor(factor, mode)
    if mode == "nearest":
        return nearest(x, factor, axes)
    return bilinear_sum(x, factor, int16_fits, axes)


def bilinear_gain(factor: int) -> int:
    """What the bilinear sum is multiplied by against the normalized interpolation."""
    return (2 * factor) ** 2


@register("FoldedUpsample")
def folded_upsample(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return upsample(inputs[0], int(node.attr("Factor")), str(node.attr("Mode")))
