"""Binary convolutions in the packed domain: windows taken over bytes of packed pixels, in
tiles of output rows.

A pixel's C channel bits are packed into ``ceil(C / 8)`` bytes (``np.packbits``, first channel
in the most significant bit of the first byte, the last byte zero-padded). A window of
``kh * kw`` taps is the concatenation of its taps' bytes in (ky, kx) order, zero bytes
appended to whole 64-bit words: the k*k-fold window tensor is never built unpacked. Weights
are packed the same way, so padding bits are 0 in both and never count as a mismatch (or in
an AND). The rows feed :func:`sim.exact.packed_matches` and its relatives.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from sim.kernels.window import conv_out_dim, sliding_window
from sim.layout import columns_into, pixel_type

# Output pixels per tile: bounds the window words of a large map (each tile's rows are
# gathered, counted and dropped before the next).
TILE_ROWS = 1 << 14
# Threads for the tiles of a convolution (torch's eval uses as many).
THREADS = min(2, os.cpu_count() or 1)
# A map is split among the threads from this many output pixels a thread.
MIN_SHARED_PIXELS = 512
# ... and a pixelwise layer's rows from this many rows a thread.
MIN_SPLIT_ROWS = 1 << 14
_POOL: ThreadPoolExecutor | None = None


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


def window_words_major(
    packed: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
    dilation: tuple[int, int],
) -> np.ndarray:
    """:func:`window_words` word by word, (words, M): where a pixel's bytes divide a word or
    are whole words, each tap is copied straight into the words it occupies (the XNOR word
    loop reads one word of every window at a time; transposing (M, words) costs more than
    the gather); otherwise the rows are gathered and transposed."""
    n, h, w, p = packed.shape
    taps = kernel[0] * kernel[1]
    if (8 % p and p % 8) or n == 0:
        return np.ascontiguousarray(window_words(packed, kernel, stride, dilation).T)
    _, oh, ow = window_grid(packed.shape, kernel, stride, dilation)
    words = -(-taps * p // 8)
    out = np.zeros((words, n, oh, ow, 8), dtype=np.uint8)
    lane = pixel_type(min(p, 8))
    src = np.ascontiguousarray(packed).view(lane)  # (N, H, W, pixel lanes)
    for ky in range(kernel[0]):
        for kx in range(kernel[1]):
            y0, x0 = ky * dilation[0], kx * dilation[1]
            tap = src[:, y0 : y0 + (oh - 1) * stride[0] + 1 : stride[0],
                      x0 : x0 + (ow - 1) * stride[1] + 1 : stride[1]]
            start = (ky * kernel[1] + kx) * p
            for k in range(tap.shape[-1]):  # one lane (or whole word) at a time
                byte = start + k * lane.itemsize
                word = out[byte // 8, ..., byte % 8 : byte % 8 + lane.itemsize].view(lane)
                word[..., 0] = tap[..., k]
    return out.view(np.uint64).reshape(words, -1)


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


def row_tiles(packed: np.ndarray, kernel, stride, dilation, gather=None, tile_rows=None):
    """Yield (first output row, window words) per tile of whole output rows of each frame:
    at most about ``tile_rows`` (default :data:`TILE_ROWS`) output pixels' words exist at a
    time. ``gather(part, kernel, stride, dilation)`` takes a tile's windows (default
    :func:`window_words`)."""
    gather = window_words if gather is None else gather
    n, oh, ow = window_grid(packed.shape, kernel, stride, dilation)
    span = dilation[0] * (kernel[0] - 1) + 1
    rows_per_tile = max(1, (TILE_ROWS if tile_rows is None else tile_rows) // max(1, ow))
    for b in range(n):
        for y0 in range(0, oh, rows_per_tile):
            y1 = min(oh, y0 + rows_per_tile)
            part = packed[b : b + 1, y0 * stride[0] : (y1 - 1) * stride[0] + span]
            yield b * oh + y0, gather(part, kernel, stride, dilation)


def tile_pixels(pixels: int) -> int:
    """Output pixels per tile of a map of ``pixels``: at most :data:`TILE_ROWS`, and small
    enough that every thread gets a tile where the map is large enough to share."""
    if THREADS < 2 or pixels < THREADS * MIN_SHARED_PIXELS:
        return TILE_ROWS
    tiles = -(-pixels // TILE_ROWS)
    tiles = -(-tiles // THREADS) * THREADS
    return min(TILE_ROWS, -(-pixels // tiles))


def pool() -> ThreadPoolExecutor:
    """The process's tile threads (:data:`THREADS` workers, made on first use)."""
    global _POOL
    if _POOL is None or _POOL._max_workers != THREADS:
        _POOL = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="sim-tile")
    return _POOL


def map_rows(fn: Callable[[np.ndarray], np.ndarray], a: np.ndarray,
             min_rows: int = MIN_SPLIT_ROWS) -> np.ndarray:
    """``fn(a)`` for a function of independent rows: ``a`` split into one block of rows a
    thread where it has at least ``min_rows`` rows a thread, the results joined."""
    if THREADS < 2 or a.shape[0] < THREADS * min_rows:
        return fn(a)
    step = -(-a.shape[0] // THREADS)
    parts = list(pool().map(fn, [a[i : i + step] for i in range(0, a.shape[0], step)]))
    return np.concatenate(parts)


def map_tiles(maps: list[np.ndarray], kernel, stride, dilation, compute, gather=None,
              channel_major: bool = False, out_dtype=None, transpose: bool = True) -> np.ndarray:
    """``compute([tile windows of each map])`` -> (tile pixels, channels), or with
    ``channel_major`` (channels, tile pixels), for every tile of :func:`row_tiles`, assembled
    into (N * OH * OW, channels) of ``out_dtype`` (default: the tiles' type; an integer
    container narrower than the tiles' keeps the low bits), or channel-major tiles into
    (channels, N * OH * OW) where ``transpose`` is off. Tiles run on :data:`THREADS`
    threads: numpy releases the GIL inside its loops, so the tiles' XNOR popcounts and
    products proceed in parallel."""
    n, oh, ow = window_grid(maps[0].shape, kernel, stride, dilation)
    per_tile = tile_pixels(n * oh * ow)
    tiles = [list(t) for t in zip(*(row_tiles(m, kernel, stride, dilation, gather=_lazy(gather),
                                              tile_rows=per_tile)
                                    for m in maps))]

    def run(tile):
        start = tile[0][0]
        return start * ow, compute([t[1]() for t in tile])

    parts = pool().map(run, tiles) if THREADS > 1 and len(tiles) > 1 else map(run, tiles)
    out = None
    for start, part in parts:
        channels = part.shape[0] if channel_major else part.shape[1]
        if channel_major and not transpose:
            if out is None:
                out = np.empty((channels, n * oh * ow), dtype=out_dtype or part.dtype)
            out[:, start : start + part.shape[1]] = part
            continue
        if out is None:
            out = np.empty((n * oh * ow, channels), dtype=out_dtype or part.dtype)
        if channel_major:
            columns_into(out[start : start + part.shape[1]], part)
        else:
            out[start : start + part.shape[0]] = part
    return out


def _lazy(gather):
    """A gather that returns a thunk: the windows are taken inside the worker thread."""
    gather = window_words if gather is None else gather
    return lambda part, k, s, d: (lambda: gather(part, k, s, d))
