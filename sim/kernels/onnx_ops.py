"""Plain ONNX ops and qonnx's MultiThreshold: what stays at a lowered graph's two ends and
between its partitions. FINN runs these through onnxruntime / qonnx; arithmetic on floats is
float32, as there.

Batch: a graph exported for batch 1 runs on any leading batch N. Reshape keeps the declared
output shape with its leading dimension scaled by N.
"""

from __future__ import annotations

import math

import numpy as np

from sim.bundle import Node, SimError
from sim.datatypes import as_int64
from sim.kernels import register
from sim.kernels.streams import top_k_indices
from sim.thresholds import count_thresholds


@register("Identity", hw=False)
def identity(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return inputs[0]


@register("Transpose", hw=False)
def transpose(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    x = inputs[0]
    perm = node.attr("perm", None)
    return np.transpose(x, None if perm is None else [int(p) for p in perm])


@register("Reshape", hw=False)
def reshape(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    x = inputs[0]
    declared_in, declared_out = node.in_shapes[0], node.out_shapes[0]
    if declared_in is not None and declared_out is not None and declared_out:
        per_item = math.prod(declared_in)
        if per_item == 0 or x.size % per_item:
            raise SimError(f"{node.label()}: input shape {x.shape} does not match the declared {declared_in}")
        batch = x.size // per_item
        return x.reshape((declared_out[0] * batch,) + tuple(declared_out[1:]))
    target = [int(s) for s in inputs[1].reshape(-1)]
    target = [x.shape[i] if s == 0 else s for i, s in enumerate(target)]
    return x.reshape(target)


@register("Flatten", hw=False)
def flatten(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    x = inputs[0]
    axis = int(node.attr("axis", 1))
    axis = axis + x.ndim if axis < 0 else axis
    return x.reshape(math.prod(x.shape[:axis]), -1)


def _axes(node: Node, inputs: list[np.ndarray]) -> list[int] | None:
    if len(inputs) > 1:
        return [int(a) for a in inputs[1].reshape(-1)]
    axes = node.attr("axes", None)
    return None if axes is None else [int(a) for a in axes]


@register("Squeeze", hw=False)
def squeeze(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    axes = _axes(node, inputs)
    return np.squeeze(inputs[0], axis=None if axes is None else tuple(axes))


@register("Unsqueeze", hw=False)
def unsqueeze(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    axes = _axes(node, inputs)
    if axes is None:
        raise SimError(f"{node.label()}: Unsqueeze without axes")
    return np.expand_dims(inputs[0], axis=tuple(axes))


@register("Concat", hw=False)
def concat(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(inputs, axis=int(node.attr("axis")))


def _float_binary(op):
    def kernel(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
        a, b = (np.asarray(v, dtype=np.float32) for v in inputs)
        return op(a, b)

    return kernel


for _name, _op in {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}.items():
    register(_name, hw=False)(_float_binary(_op))


@register("MultiThreshold", hw=False)
def multi_threshold(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    """qonnx MultiThreshold: ``out_scale * count + out_bias`` with the channel axis taken from
    ``data_layout``, or guessed from the rank as qonnx does (NC, NWC, NCHW)."""
    x, thr = inputs[0], inputs[1]
    layout = node.attr("data_layout", "")
    if not layout and x.ndim < 5:
        layout = {2: "NC", 3: "NWC", 4: "NCHW"}.get(x.ndim, "")
    cdim = layout.index("C") if "C" in layout else 1
    if x.ndim <= cdim:
        raise SimError(f"{node.label()}: input of shape {x.shape} has no channel axis {cdim}")
    count = count_thresholds(x, thr, channel_axis=cdim)
    scale, bias = float(node.attr("out_scale", 1.0)), float(node.attr("out_bias", 0.0))
    if scale.is_integer() and bias.is_integer():
        return count * int(scale) + int(bias)
    return count.astype(np.float32) * np.float32(scale) + np.float32(bias)


@register("ArgMax", hw=False)
def argmax(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    x = inputs[0]
    axis = int(node.attr("axis", 0))
    keepdims = bool(node.attr("keepdims", 1))
    if node.attr("select_last_index", 0):
        flipped = np.flip(x, axis=axis)
        idx = x.shape[axis] - 1 - np.argmax(flipped, axis=axis)
    else:
        idx = np.argmax(x, axis=axis)
    idx = idx.astype(np.int64)
    return np.expand_dims(idx, axis) if keepdims else idx


@register("TopK", hw=False)
def topk(node: Node, inputs: list[np.ndarray]) -> list[np.ndarray]:
    x = inputs[0]
    k = int(as_int64(inputs[1]).reshape(-1)[0])
    axis = int(node.attr("axis", -1))
    idx = top_k_indices(x, k, axis=axis, largest=bool(node.attr("largest", 1)))
    return [np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)]
