"""Binary convolutions in the packed domain: windows taken over bytes of packed pixels.

A pixel's C channel bits are packed into ``ceil(C / 8)`` bytes (``np.packbits``, first channel
in the most significant bit of the first byte, the last byte zero-padded). A window of
``kh * kw`` taps is the concatenation of its taps' bytes in (ky, kx) order, zero bytes
appended to whole 64-bit words: the k*k-fold window tensor is never built unpacked. Weights
are packed the same way, so padding bits are 0 in both and never count as a mismatch (or in
an AND). The rows feed :func:`sim.exact.packed_matches` and its relatives.
"""

from __future__ import annotations

import numpy as np

from sim.kernels.window import conv_out_dim, sliding_window

# Output pixels per tile: bounds the window words of a large map (each tile's rows are
# gathered, counted and dropped before the next).
TILE_ROWS = 1 << 15


def pack_pixels(bits: np.ndarray) -> np.ndarray:
    """(N, H, W, C) of 0/1 (bool or an integer type) -> (N, H, W, ceil(C/8)) uint8."""
    # any nonzero element packs as 1; whole bytes per pixel: one flat pass (a packbits along
    # a short last axis loops per pixel)
    if bits.shape[-1] % 8 == 0:
        return np.packbits(bits.reshape(-1)).reshape(bits.shape[:-1] + (bits.shape[-1] // 8,))
    return np.packbits(bits, axis=-1)


def to_words(rows: np.ndarray) -> np.ndarray:
    """(M, bytes) uint8 -> (M, words) uint64, zero bytes appended to whole words."""
    m, nbytes = rows.shape
    if nbytes % 8 == 0:
        return np.ascontiguousarray(rows).view(np.uint64)
    padded = np.zeros((m, -(-nbytes // 8) * 8), dtype=np.uint8)
    padded[:, :nbytes] = rows
    return padded.view(np.uint64)


def window_words(
    packed: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
    dilation: tuple[int, int],
) -> np.ndarray:
    """Packed pixels (N, H, W, bytes) -> one row of words per output pixel, (M, words), the
    windows swept as :func:`sim.kernels.window.sliding_window` sweeps them."""
    windows = sliding_window(packed, kernel, stride, dilation, row_bytes_multiple=8)
    return windows.reshape(-1, windows.shape[-1]).view(np.uint64)


def weight_words(w_bits: np.ndarray, taps: int, channels: int) -> np.ndarray:
    """Weight bits (taps * C, MH) in (ky, kx, c) row order -> (MH, words), packed as the input
    windows are."""
    per_tap = w_bits.reshape(taps, channels, -1).transpose(2, 0, 1)  # (MH, taps, C)
    packed = np.packbits(per_tap, axis=-1)  # (MH, taps, bytes per pixel)
    return to_words(packed.reshape(packed.shape[0], -1))


def window_grid(shape: tuple[int, ...], kernel, stride, dilation) -> tuple[int, int, int]:
    """(N, OH, OW) of a window sweep over an (N, H, W, C) map."""
    n, h, w, _ = shape
    return (n, conv_out_dim(h, kernel[0], stride[0], 0, dilation[0]),
            conv_out_dim(w, kernel[1], stride[1], 0, dilation[1]))


def row_tiles(packed: np.ndarray, kernel, stride, dilation):
    """Yield (first output row, window words) per tile of whole output rows of each frame:
    at most about :data:`TILE_ROWS` output pixels' words exist at a time."""
    n, oh, ow = window_grid(packed.shape, kernel, stride, dilation)
    span = dilation[0] * (kernel[0] - 1) + 1
    rows_per_tile = max(1, TILE_ROWS // max(1, ow))
    for b in range(n):
        for y0 in range(0, oh, rows_per_tile):
            y1 = min(oh, y0 + rows_per_tile)
            part = packed[b : b + 1, y0 * stride[0] : (y1 - 1) * stride[0] + span]
            yield b * oh + y0, window_words(part, kernel, stride, dilation)
