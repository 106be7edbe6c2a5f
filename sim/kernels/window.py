"""Spatial layers on NHWC streams: sliding window, padding, pooling, nearest upsampling.

FINN semantics (convolutioninputgenerator.py via qonnx Im2Col, fmpadding.py,
fmpadding_pixel.py, pool.py, globalaccpool.py, upsampler.py):

- ConvolutionInputGenerator emits, per output pixel, the window in (ky, kx, c) order, c
  innermost; no padding (FMPadding does that); ``depthwise`` does not change the order in
  FINN's execution (the VVAU that follows accounts for it).
- FMPadding pads with the value 0, whatever the data type: for a BINARY stream that feeds
  an XNOR product, 0 means -1. It has no pad-value attribute.
- Pool reads a window generator's output (N, OH, OW, k*k*C) and reduces over the window:
  MaxPool (max), AccPool (sum), QuantAvgPool (sum shifted right by
  ``bitlen((2^ibits - 1) * k*k) - obits`` bits, floor). AvgPool is not modelled.
- UpsampleNearestNeighbour repeats rows and columns by the integer factors HO/HI, WO/WI.
"""

from __future__ import annotations

import numpy as np

from sim.bundle import Node, SimError
from sim.datatypes import as_int64, dtype
from sim.kernels import register
from sim.layout import copy_pixels, pixel_type
from sim.packedmap import PackedMap


def _nhwc(node: Node, x: np.ndarray, hw: tuple[int, int] | None, channels: int | None) -> None:
    if x.ndim != 4:
        raise SimError(f"{node.label()}: input must be NHWC (4-D), got shape {x.shape}")
    if hw is not None and tuple(x.shape[1:3]) != tuple(hw):
        raise SimError(f"{node.label()}: input spatial size {x.shape[1:3]}, expected {tuple(hw)}")
    if channels is not None and x.shape[3] != channels:
        raise SimError(f"{node.label()}: input has {x.shape[3]} channels, expected {channels}")


def conv_out_dim(size: int, k: int, stride: int, pad: int = 0, dilation: int = 1) -> int:
    """Output size of a convolution window sweep (qonnx's compute_conv_output_dim)."""
    return (size + pad - dilation * (k - 1) - 1) // stride + 1


def sliding_window(
    x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
    row_bytes_multiple: int = 1,
) -> np.ndarray:
    """(N, H, W, C) -> (N, OH, OW, kh*kw*C), window elements in (ky, kx, c) order.

    With ``row_bytes_multiple`` m > 1 (uint8 input) each window row is followed by zero bytes
    up to a multiple of m bytes: (N, OH, OW, row bytes)."""
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    oh, ow = conv_out_dim(h, kh, sh, 0, dh), conv_out_dim(w, kw, sw, 0, dw)
    if oh <= 0 or ow <= 0:
        raise ValueError(f"window {kernel} (dilation {dilation}) larger than the {h}x{w} map")
    # A pixel's C elements as one element: each tap is then one strided copy of whole
    # pixels (long inner loops), written into its place in every window row.
    pixel = pixel_type(c * x.dtype.itemsize)
    src = np.ascontiguousarray(x).view(pixel)[..., 0]  # (N, H, W)
    width = kh * kw * c
    if row_bytes_multiple > 1:
        width = -(-width // row_bytes_multiple) * row_bytes_multiple
    out = np.zeros((n, oh, ow, width), dtype=x.dtype) if width != kh * kw * c else \
        np.empty((n, oh, ow, width), dtype=x.dtype)
    taps = out[..., : kh * kw * c].view(pixel)  # (N, OH, OW, kh*kw)
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dh, kx * dw
            taps[..., ky * kw + kx] = src[:, y0 : y0 + (oh - 1) * sh + 1 : sh,
                                          x0 : x0 + (ow - 1) * sw + 1 : sw]
    return out


def check_window_input(node: Node, x: np.ndarray) -> None:
    """A ConvolutionInputGenerator's input must be NHWC of its declared size and channels."""
    _nhwc(node, x, tuple(node.attr("IFMDim")), int(node.attr("IFMChannels")))


@register("ConvolutionInputGenerator")
def convolution_input_generator(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    x = inputs[0]
    check_window_input(node, x)
    k = tuple(int(v) for v in node.attr("ConvKernelDim"))
    s = tuple(int(v) for v in node.attr("Stride"))
    d = tuple(int(v) for v in node.attr("Dilation"))
    return sliding_window(x, k, s, d)


@register("FMPadding", packed_inputs=True)
def fmpadding(node: Node, inputs: list) -> np.ndarray | PackedMap:
    x = inputs[0]
    if isinstance(x, PackedMap) and x.bipolar:  # the pad value 0 is no BIPOLAR value
        x = x.unpack()
    _nhwc(node, x, tuple(node.attr("ImgDim")), int(node.attr("NumChannels")))
    top, left, bottom, right = (int(p) for p in node.attr("Padding"))
    if isinstance(x, PackedMap):  # BINARY: the pad value 0 is the bit 0
        return PackedMap(_pad(x.bits, top, left, bottom, right), x.channels, False)
    return _pad(x, top, left, bottom, right)


def _pad(x: np.ndarray, top: int, left: int, bottom: int, right: int) -> np.ndarray:
    n, h, w, c = x.shape
    out = np.zeros((n, top + h + bottom, left + w + right, c), dtype=x.dtype)
    copy_pixels(out[:, top : top + h, left : left + w], x)
    return out


@register("FMPadding_Pixel")
def fmpadding_pixel(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    x = inputs[0]
    _nhwc(node, x, tuple(node.attr("ImgDim")), int(node.attr("NumChannels")))
    sh, sw = (int(s) for s in node.attr("Stride"))
    n, h, w, c = x.shape
    out = np.zeros((n, h + (h - 1) * (sh - 1), w + (w - 1) * (sw - 1), c), dtype=x.dtype)
    out[:, ::sh, ::sw, :] = x
    return out


@register("Pool", reshape=True)
def pool(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    x = inputs[0]
    fn = node.attr("Function")
    kh, kw = (int(k) for k in node.attr("KernelSize"))
    ch = int(node.attr("Channels"))
    k2 = kh * kw
    if x.shape[-1] != k2 * ch:
        raise SimError(f"{node.label()}: input has {x.shape[-1]} elements per pixel, expected {k2 * ch}")
    windows = x.reshape(x.shape[:-1] + (k2, ch))
    if fn == "MaxPool":
        return windows.max(axis=-2)
    if fn == "AccPool":
        return as_int64(windows).sum(axis=-2)
    if fn == "QuantAvgPool":
        ibits = dtype(node.attr("InputDataType")).bits
        obits = dtype(node.attr("OutputDataType")).bits
        shift = max(int((2**ibits - 1) * k2).bit_length() - obits, 0)
        return as_int64(windows).sum(axis=-2) >> shift
    raise SimError(f"{node.label()}: pool function {fn!r} is not modelled by sim")


@register("GlobalAccPool", reshape=True)
def global_acc_pool(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    x = inputs[0]
    _nhwc(node, x, None, int(node.attr("NumChannels")))
    return as_int64(x).sum(axis=(1, 2), keepdims=True)


@register("UpsampleNearestNeighbour", packed_inputs=True)
def upsample_nearest(node: Node, inputs: list) -> np.ndarray | PackedMap:
    x = inputs[0]
    hi, wi = int(node.attr("HI")), int(node.attr("WI"))
    ho, wo = int(node.attr("HO")), int(node.attr("WO"))
    _nhwc(node, x, (hi, wi), int(node.attr("NumChannels")))
    if ho % hi or wo % wi:
        raise SimError(
            f"{node.label()}: {hi}x{wi} -> {ho}x{wo} is not an integer scale "
            "(FINN's execution of this layer fails there too)"
        )
    if isinstance(x, PackedMap):
        return PackedMap(np.repeat(np.repeat(x.bits, ho // hi, axis=1), wo // wi, axis=2),
                         x.channels, x.bipolar)
    return np.repeat(np.repeat(x, ho // hi, axis=1), wo // wi, axis=2)
