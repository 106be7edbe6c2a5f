"""Copies that change a map's memory layout with long loops: numpy loops per element of the
innermost axis, so a copy along a short channel axis, or a transposing copy of (channels,
pixels), runs at a few ns an element; these move whole pixels, one channel, or one column at
a time instead."""

from __future__ import annotations

import numpy as np

_NATIVE = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def pixel_type(size: int) -> np.dtype:
    """One element of ``size`` bytes: an unsigned integer of that size where there is one
    (numpy copies a 2-byte void 8x slower), else a void."""
    return np.dtype(_NATIVE[size]) if size in _NATIVE else np.dtype((np.void, size))


def copy_pixels(dst: np.ndarray, src: np.ndarray) -> None:
    """``dst[...] = src`` for arrays of the same type and shape whose last axis is contiguous,
    with long loops: one element per pixel where a pixel is 1, 2, 4 or 8 bytes or holds more
    than 4 channels, else one channel at a time (for 3 bytes, 3x faster than a void pixel)."""
    channels = src.shape[-1]
    if channels == 0:
        return
    size = channels * src.dtype.itemsize
    if size not in _NATIVE and channels <= 4:
        for c in range(channels):
            dst[..., c] = src[..., c]
        return
    pixel = pixel_type(size)
    dst.view(pixel)[..., 0] = np.ascontiguousarray(src).view(pixel)[..., 0]


def columns_into(dst: np.ndarray, src: np.ndarray) -> None:
    """``dst[...] = src.T`` for ``dst`` (pixels, channels) and ``src`` (channels, pixels), one
    column at a time (a transposing copy is 2-3x slower); ``dst``'s type is kept."""
    for c in range(src.shape[0]):
        dst[:, c] = src[c]
