"""Fused kernels: a convolution's sliding window and its MVAU in one step.

A ConvolutionInputGenerator repeats every pixel k*k times; on a 256x512 map that is most of
a network's memory traffic. When a window's only consumer is an MVAU whose product is a bit
count (XNOR popcount, BIPOLAR x BIPOLAR, or an input of at most four bits times BINARY or
BIPOLAR weights, one bit plane at a time), the pixels are packed into bits first and the
windows taken over the packed bytes: the same rows of bits the unfused path packs, in
(ky, kx, c) order, each pixel's channels padded to whole bytes (padding bits 0 in input and
weights, so they neither match nor count). A multi-bit product whose accumulator bound is
below 2^24 (the 8-bit stem) gathers its windows from the float32 map tile by tile into one
float32 product each. Other MVAUs decline, and the executor runs the two kernels in turn.
"""

from __future__ import annotations

import numpy as np

from sim.bitconv import map_tiles, pack_pixels, weight_words, window_grid, window_words_major
from sim.bundle import Node, SimError
from sim.datatypes import dtype
from sim.exact import FLOAT32_EXACT, packed_matches, packed_plane_dot, packed_sign_dot
from sim.kernels import register_fusion
from sim.kernels.matrix import activate, activate_bits, as_bits, product_bound, product_route
from sim.kernels.window import check_window_input, sliding_window
from sim.layout import copy_pixels
from sim.packedmap import ONE_BIT_TYPES, PackedMap, pack_channel_bits, unpacked


def _bit_planes(node: Node, x: np.ndarray, mode: str, bits: int) -> list[np.ndarray]:
    """{0, 1} uint8 planes of the input: its bits (xnor), its XNOR encoding (bipolar), or
    its two's complement bits, least significant first (plane)."""
    if mode == "plane":
        return [((x >> j) & 1).astype(np.uint8) for j in range(bits)]
    lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
    if mode == "bipolar":
        if lo < -1 or hi > 1 or (x == 0).any():
            raise SimError(f"{node.label()}: input must hold -1/+1 values for an XNOR product")
        return [((x + 1) >> 1).astype(np.uint8)]
    if lo < 0 or hi > 1:
        raise SimError(f"{node.label()}: input must hold 0/1 values for an XNOR product")
    return [x.astype(np.uint8, copy=False)]


@register_fusion("ConvolutionInputGenerator", "MVAU", packed_inputs=True, packs=True)
def window_mvau(
    window: Node, mvau: Node, window_inputs: list, mvau_rest: list[np.ndarray],
    packed: bool = False,
) -> np.ndarray | PackedMap | None:
    x = window_inputs[0]
    w = mvau_rest[0]
    idt, wdt = mvau.attr("inputDataType"), mvau.attr("weightDataType")
    mode = product_route(mvau)
    if mode == "matmul":
        return _window_matmul(window, mvau, unpacked(x), w, mvau_rest[1:], packed)
    if isinstance(x, PackedMap) and (mode == "plane" or x.bipolar != (mode == "bipolar")):
        x = x.unpack()  # the planes' check names the values the product cannot take
    if int(window.attr("depthwise", 0)) or x.ndim != 4:
        return None
    check_window_input(window, x)
    kh, kw = (int(v) for v in window.attr("ConvKernelDim"))
    taps, channels = kh * kw, x.shape[-1]
    mw, mh = int(mvau.attr("MW")), int(mvau.attr("MH"))
    if w.shape != (mw, mh) or mw != taps * channels:
        return None
    stride = tuple(int(v) for v in window.attr("Stride"))
    dilation = tuple(int(v) for v in window.attr("Dilation"))
    i = dtype(idt)

    bipolar_w = mode == "bipolar" or (mode == "plane" and wdt == "BIPOLAR")
    gather = None
    ww = weight_words(as_bits(w, bipolar_w, "weights", mvau), taps, channels)
    if mode == "plane" and bipolar_w and i.bits == 2 and i.signed and _mostly_signs(x):
        planes = [x > 0, x == 0, x == -2]

        def product(rows):
            return packed_sign_dot(*rows, ww, mw, channel_major=True)
    elif mode == "plane":
        planes = _bit_planes(mvau, x, mode, i.bits)

        def product(rows):
            return packed_plane_dot(rows, i.signed, ww, bipolar_w, channel_major=True)
    else:
        planes = None if isinstance(x, PackedMap) else _bit_planes(mvau, x, mode, i.bits)

        gather = window_words_major

        def product(rows):
            return packed_matches(rows[0], ww, mw, channel_major=True, words_major=True)
    grid = window_grid(x.shape, (kh, kw), stride, dilation)
    thresholds = mvau_rest[1] if len(mvau_rest) > 1 else None
    bound = product_bound(mvau, w)
    maps = [x.bits] if planes is None else [pack_pixels(p) for p in planes]
    if _packs(mvau, packed):
        bits = map_tiles(maps, (kh, kw), stride, dilation, lambda rows: pack_channel_bits(
            activate_bits(mvau, product(rows), thresholds, bound, channel_axis=0)), gather)
        return PackedMap(bits.reshape(grid + (bits.shape[-1],)), mh, mvau.out_dtypes[0] == "BIPOLAR")
    out = map_tiles(maps, (kh, kw), stride, dilation,
                    lambda rows: activate(mvau, product(rows), thresholds, bound, channel_axis=0),
                    gather, channel_major=True, out_dtype=output_container(mvau))
    return out.reshape(grid + (mh,))


def _packs(mvau: Node, packed: bool) -> bool:
    """The fused MVAU is asked for a packed output and has one: thresholded to a one-bit type."""
    return packed and not mvau.attr("noActivation") and mvau.out_dtypes[0] in ONE_BIT_TYPES


def output_container(node: Node):
    """The numpy type of the node's declared integer output (None for float or fixed point):
    tiles cast to it keep the low bits the executor's wrap to the declared type reads."""
    out = dtype(node.out_dtypes[0])
    return out.container if out.is_integer else None


def _mostly_signs(x: np.ndarray) -> bool:
    """A 2-bit map that is +-1 but for a few zeros (a zero-padded sign map): the XNOR product
    with a correction beats two bit planes. (Rows of windows with a zero are at most k*k
    times the zeros; a quarter of the rows is where two planes start to win.)"""
    return int(np.count_nonzero((x == 0) | (x == -2))) * 9 < x.size // 4


def _window_matmul(window: Node, mvau: Node, x: np.ndarray, w: np.ndarray,
                   rest: list[np.ndarray], packed: bool = False) -> np.ndarray | PackedMap | None:
    """A multi-bit product (the 8-bit stem) whose accumulator bound from the data types is
    below 2^24: windows gathered from the integer map tile by tile (pixels padded with zero
    channels to a whole machine word where that is at most 8 bytes, so each tap is a native
    copy), one float32 product each (exact: every product and partial sum is an integer
    float32 holds; rows by channels, which OpenBLAS does twice as fast as the transpose)."""
    bound = product_bound(mvau, w)
    if (bound is None or bound >= FLOAT32_EXACT or int(window.attr("depthwise", 0))
            or x.ndim != 4 or x.dtype.kind not in "iu"):
        return None
    check_window_input(window, x)
    kernel = tuple(int(v) for v in window.attr("ConvKernelDim"))
    stride = tuple(int(v) for v in window.attr("Stride"))
    dilation = tuple(int(v) for v in window.attr("Dilation"))
    mw, mh = int(mvau.attr("MW")), int(mvau.attr("MH"))
    taps, channels = kernel[0] * kernel[1], x.shape[-1]
    if w.shape != (mw, mh) or mw != taps * channels:
        return None
    xp = word_pixels(x)
    wide = xp.shape[-1]
    wf = np.zeros((taps, wide, mh), dtype=np.float32)
    wf[:, :channels] = np.asarray(w).reshape(taps, channels, mh)
    wf = wf.reshape(taps * wide, mh)

    def gather(part, k, s, d):
        return sliding_window(part, k, s, d).reshape(-1, taps * wide)

    def compute(rows, bits=False):
        acc = np.matmul(rows[0].astype(np.float32), wf).astype(np.int32)
        if bits:
            return pack_pixels(activate_bits(mvau, acc, thresholds, bound))
        return activate(mvau, acc, thresholds, bound)

    def compute_channels(rows):
        acc = np.matmul(wt, rows[0].astype(np.float32).T).astype(np.int32)
        return activate(mvau, acc, thresholds, bound, channel_axis=0)

    grid = window_grid(x.shape, kernel, stride, dilation)
    thresholds = rest[0] if rest else None
    if _packs(mvau, packed):
        bits = map_tiles([xp], kernel, stride, dilation, lambda rows: compute(rows, True), gather)
        return PackedMap(bits.reshape(grid + (bits.shape[-1],)), mh, mvau.out_dtypes[0] == "BIPOLAR")
    if thresholds is not None and np.shape(thresholds)[-1] > 1 and not mvau.attr("noActivation"):
        # several thresholds a channel: compared along whole rows (the product's transpose
        # costs less than comparisons along the short channel axis)
        wt = np.ascontiguousarray(wf.T)
        out = map_tiles([xp], kernel, stride, dilation, compute_channels, gather,
                        channel_major=True, out_dtype=output_container(mvau))
    else:
        out = map_tiles([xp], kernel, stride, dilation, compute, gather,
                        out_dtype=output_container(mvau))
    return out.reshape(grid + (mh,))


def word_pixels(x: np.ndarray) -> np.ndarray:
    """``x`` (N, H, W, C) with zero channels appended until a pixel is 1, 2, 4 or 8 bytes
    (unchanged where it already is, or is wider than 8)."""
    size = x.shape[-1] * x.dtype.itemsize
    if size > 8 or size & (size - 1) == 0:
        return x
    wide = (1 << (size - 1).bit_length()) // x.dtype.itemsize
    out = np.zeros(x.shape[:-1] + (wide,), dtype=x.dtype)
    copy_pixels(out[..., : x.shape[-1]], x)
    return out
