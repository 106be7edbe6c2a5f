"""Ops of a streamlined graph, before the conversion to hardware layers: qonnx's Im2Col,
XnorPopcountMatMul and MaxPoolNHWC, and ONNX MatMul and nearest Resize. FINN's Python
execution runs them through qonnx and onnxruntime; here they let sim execute the lowering's
intermediate graphs from the streamlined one on.

- Im2Col: NHWC in, per output pixel the window in (ky, kx, c) order, padded with
  ``pad_value`` (qonnx's im2col).
- XnorPopcountMatMul: {0, 1} inputs and weights, the number of agreeing bits.
- MatMul: exact integer product when both operands hold integers (integer arrays, or
  float constants with integral values); a float32 product otherwise (the float tail).
- MaxPoolNHWC: ONNX MaxPool on NHWC, padded positions never win; no ceil mode.
- Resize (and the older Upsample): ``nearest`` only, with ONNX's coordinate transformation and
  nearest modes.
"""

from __future__ import annotations

import numpy as np

from sim.bundle import Node, SimError
from sim.datatypes import as_int64
from sim.exact import matmul_int, xnor_popcount
from sim.kernels import register
from sim.kernels.window import sliding_window


@register("Im2Col", hw=False)
def im2col(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    x = inputs[0]
    if x.ndim != 4:
        raise SimError(f"{node.label()}: input must be NHWC (4-D), got shape {x.shape}")
    top, left, bottom, right = (int(p) for p in node.attr("pad_amount", [0, 0, 0, 0]))
    if top or left or bottom or right:
        value = node.attr("pad_value", 0)
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)
    kernel = tuple(int(k) for k in node.attr("kernel_size"))
    stride = tuple(int(s) for s in node.attr("stride"))
    dilation = tuple(int(d) for d in node.attr("dilations", [1, 1]))
    return sliding_window(x, kernel, stride, dilation)


def _integral(x: np.ndarray) -> bool:
    return x.dtype.kind in "iub" or bool(np.all(x == np.rint(x)))


@register("XnorPopcountMatMul", hw=False)
def xnor_popcount_matmul(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    x, w = inputs[0], inputs[1]
    lead = x.shape[:-1]
    bits = as_int64(x).reshape(-1, x.shape[-1])
    wbits = as_int64(w)
    for name, v in (("input", bits), ("weights", wbits)):
        if v.size and (v.min() < 0 or v.max() > 1):
            raise SimError(f"{node.label()}: {name} must hold 0/1 values")
    out = xnor_popcount(bits.astype(np.uint8), wbits.astype(np.uint8))
    return out.reshape(lead + (w.shape[-1],))


@register("MatMul", hw=False)
def matmul(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    x, w = inputs[0], inputs[1]
    if w.ndim != 2:
        raise SimError(f"{node.label()}: sim multiplies by 2-D weights only, got shape {w.shape}")
    lead = x.shape[:-1]
    a = x.reshape(-1, x.shape[-1])
    if x.dtype.kind in "iub" and _integral(w):
        out = matmul_int(a, as_int64(w))
    else:
        out = np.matmul(a.astype(np.float32), w.astype(np.float32))
    return out.reshape(lead + (w.shape[-1],))


@register("MaxPoolNHWC", hw=False)
def max_pool_nhwc(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    x = inputs[0]
    if int(node.attr("ceil_mode", 0)):
        raise SimError(f"{node.label()}: ceil_mode=1 is not modelled")
    top, left, bottom, right = (int(p) for p in node.attr("pads", [0, 0, 0, 0]))
    if top or left or bottom or right:
        low = np.iinfo(x.dtype).min if x.dtype.kind in "iu" else -np.inf
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=low)
    kh, kw = (int(k) for k in node.attr("kernel_shape"))
    stride = tuple(int(s) for s in node.attr("strides", [1, 1]))
    dilation = tuple(int(d) for d in node.attr("dilations", [1, 1]))
    windows = sliding_window(x, (kh, kw), stride, dilation)
    return windows.reshape(windows.shape[:-1] + (kh * kw, x.shape[-1])).max(axis=-2)


def _source_index(node: Node, n_in: int, n_out: int, scale: float) -> np.ndarray:
    """Per output index along one axis, the input index nearest Resize reads (ONNX spec)."""
    mode = node.attr("coordinate_transformation_mode", "half_pixel")
    o = np.arange(n_out, dtype=np.float64)
    if mode == "asymmetric":
        s = o / scale
    elif mode == "half_pixel":
        s = (o + 0.5) / scale - 0.5
    elif mode == "pytorch_half_pixel":
        s = (o + 0.5) / scale - 0.5 if n_out > 1 else np.zeros_like(o)
    elif mode == "align_corners":
        s = o * (n_in - 1) / (n_out - 1) if n_out > 1 else np.zeros_like(o)
    else:
        raise SimError(f"{node.label()}: coordinate_transformation_mode {mode!r} is not modelled")
    rounding = node.attr("nearest_mode", "round_prefer_floor")
    if rounding == "floor":
        i = np.floor(s)
    elif rounding == "ceil":
        i = np.ceil(s)
    elif rounding == "round_prefer_floor":
        i = np.where(s - np.floor(s) == 0.5, np.floor(s), np.round(s))
    elif rounding == "round_prefer_ceil":
        i = np.where(s - np.floor(s) == 0.5, np.ceil(s), np.round(s))
    else:
        raise SimError(f"{node.label()}: nearest_mode {rounding!r} is not modelled")
    return np.clip(i, 0, n_in - 1).astype(np.int64)


@register("Resize", "Upsample", hw=False)
def resize_nearest(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    x = inputs[0]
    if node.attr("mode", "nearest") != "nearest":
        raise SimError(f"{node.label()}: mode {node.attr('mode')!r}: sim resizes 'nearest' only")
    # the executor passes only the inputs that are named: put them back in their positions
    by_position = dict(zip([i for i, name in enumerate(node.inputs) if name], inputs))
    scale_input = by_position.get(1 if node.op_type == "Upsample" else 2)
    sizes = by_position.get(3) if node.op_type == "Resize" else None
    if sizes is not None and sizes.size:
        out_shape = [x.shape[0]] + [int(s) for s in sizes.reshape(-1)[1:]]
        scales = [1.0] + [o / i for o, i in zip(out_shape[1:], x.shape[1:])]
    elif scale_input is not None and scale_input.size:
        scales = [float(s) for s in scale_input.reshape(-1)]
        out_shape = [int(np.floor(i * s)) for i, s in zip(x.shape, scales)]
    else:
        raise SimError(f"{node.label()}: neither scales nor sizes given")
    if scales[0] != 1:
        raise SimError(f"{node.label()}: resizing the batch axis is not modelled")
    out = x
    for axis in range(1, x.ndim):
        if scales[axis] != 1 or out_shape[axis] != x.shape[axis]:
            index = _source_index(node, x.shape[axis], out_shape[axis], scales[axis])
            out = np.take(out, index, axis=axis)
    return out
