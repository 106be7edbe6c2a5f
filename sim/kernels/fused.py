"""Fused kernels: a convolution's sliding window and its MVAU in one step.

A ConvolutionInputGenerator repeats every pixel k*k times; on a 256x512 map that is most of
a network's memory traffic. When a window's only consumer is an MVAU whose product is a bit
count (XNOR popcount, BIPOLAR x BIPOLAR, or an input of at most four bits times BINARY or
BIPOLAR weights, one bit plane at a time), the pixels are packed into bits first and the
windows taken over the packed bytes: the same rows of bits the unfused path packs, in
(ky, kx, c) order, each pixel's channels padded to whole bytes (padding bits 0 in input and
weights, so they neither match nor count). Other MVAUs decline, and the executor runs the
two kernels in turn.
"""

from __future__ import annotations

import numpy as np

from sim.bundle import Node, SimError
from sim.datatypes import dtype
from sim.exact import packed_matches, packed_plane_dot, packed_sign_dot
from sim.kernels import register_fusion
from sim.kernels.matrix import activate, as_bits, plane_route, product_bound
from sim.kernels.window import check_window_input, conv_out_dim, sliding_window


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


def _words(rows: np.ndarray) -> np.ndarray:
    """(M, bytes) uint8 -> (M, words) uint64, zero bytes appended to whole words."""
    m, nbytes = rows.shape
    padded = np.zeros((m, -(-nbytes // 8) * 8), dtype=np.uint8)
    padded[:, :nbytes] = rows
    return padded.view(np.uint64)


def _weight_words(w_bits: np.ndarray, taps: int, channels: int) -> np.ndarray:
    """Weight bits (taps * C, MH) in (ky, kx, c) row order -> (MH, words), packed as the
    input windows are: per tap the channels padded to whole bytes."""
    per_tap = w_bits.reshape(taps, channels, -1).transpose(2, 0, 1)  # (MH, taps, C)
    packed = np.packbits(per_tap, axis=-1)  # (MH, taps, bytes per pixel)
    return _words(packed.reshape(packed.shape[0], -1))


@register_fusion("ConvolutionInputGenerator", "MVAU")
def window_mvau(
    window: Node, mvau: Node, window_inputs: list[np.ndarray], mvau_rest: list[np.ndarray]
) -> np.ndarray | None:
    x = window_inputs[0]
    w = mvau_rest[0]
    idt, wdt = mvau.attr("inputDataType"), mvau.attr("weightDataType")
    if mvau.attr("binaryXnorMode"):
        mode = "xnor"
    elif idt == "BIPOLAR" and wdt == "BIPOLAR":
        mode = "bipolar"
    elif plane_route(idt, wdt):
        mode = "plane"
    else:
        return None
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

    def rows_of(planes: list[np.ndarray]) -> list[np.ndarray]:
        """Each {0, 1} plane (N, H, W, C) -> packed window rows (M, words)."""
        out = []
        for plane in planes:
            packed = np.packbits(plane, axis=-1)  # (N, H, W, bytes per pixel)
            windows = sliding_window(packed, (kh, kw), stride, dilation)
            out.append(_words(windows.reshape(-1, windows.shape[-1])))
        return out

    bipolar_w = mode == "bipolar" or (mode == "plane" and wdt == "BIPOLAR")
    ww = _weight_words(as_bits(w, bipolar_w, "weights", mvau), taps, channels)
    if mode == "plane" and bipolar_w and i.bits == 2 and i.signed and _mostly_signs(x):
        acc = packed_sign_dot(*rows_of([(x > 0), (x == 0), (x == -2)]), ww, mw)
    elif mode == "plane":
        acc = packed_plane_dot(rows_of(_bit_planes(mvau, x, mode, i.bits)), i.signed, ww, bipolar_w)
    else:
        acc = packed_matches(rows_of(_bit_planes(mvau, x, mode, i.bits))[0], ww, mw)
    out_shape = _window_grid(x.shape, (kh, kw), stride, dilation)
    out = activate(mvau, acc, mvau_rest[1] if len(mvau_rest) > 1 else None, product_bound(mvau, w))
    return out.reshape(out_shape + (mh,))


def _mostly_signs(x: np.ndarray) -> bool:
    """A 2-bit map that is +-1 but for a few zeros (a zero-padded sign map): the XNOR product
    with a correction beats two bit planes. (Rows of windows with a zero are at most k*k
    times the zeros; a quarter of the rows is where two planes start to win.)"""
    return int(np.count_nonzero((x == 0) | (x == -2))) * 9 < x.size // 4


def _window_grid(shape: tuple[int, ...], kernel, stride, dilation) -> tuple[int, int, int]:
    n, h, w, _ = shape
    return (n, conv_out_dim(h, kernel[0], stride[0], 0, dilation[0]),
            conv_out_dim(w, kernel[1], stride[1], 0, dilation[1]))
