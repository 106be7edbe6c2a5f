"""Exact rewrites of an exported QONNX graph so that FINN's ``ConvertQONNXtoFINN`` takes it.

Each rewrite leaves every tensor that reaches a non-rewritten node bit-for-bit unchanged:

1. ``unit_scale_bipolar``: FINN converts an activation ``BipolarQuant`` only if its scale is
   exactly 1. ``BipolarQuant(x, s)`` becomes ``BipolarQuant(x, 1) -> Mul(s)``.
2. The scalar ``Mul(s)`` is then moved towards the consumers while that is exact: past a
   nearest ``Resize``, past a ``Concat`` whose inputs all carry the same ``Mul(s)``, and past a
   ``Pad`` whose constant ``c`` becomes ``c / s`` (our ``-s`` padding becomes ``-1``: the pad
   sits on the +-1 integer tensor, where FINN's padding layer produces it). A ``Mul`` feeding
   several consumers is duplicated first. This matters beyond tidiness: FINN's
   ``MoveScalesPastIm2Col`` moves a scalar ``Mul`` past a ``Pad`` without dividing the pad
   constant, which is only right for zero padding.
3. ``vector_zero_points``: Brevitas exports a bias ``Quant`` with a 0-d zero point, on which
   qonnx's ``ExtractBiasFromConv`` fails (``cannot reshape array of size 1``); 0-d zero points
   of ``Quant`` nodes become shape ``(1,)``.
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.general import (
    GiveReadableTensorNames,
    GiveUniqueNodeNames,
    RemoveUnusedTensors,
)
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import get_by_name


def _scalar_mul_value(model: ModelWrapper, node: NodeProto | None) -> np.ndarray | None:
    """The float32 scalar of ``Mul(dynamic, scalar initializer)``, else None."""
    if node is None or node.op_type != "Mul":
        return None
    if model.get_initializer(node.input[0]) is not None:
        return None
    value = model.get_initializer(node.input[1])
    if value is None or value.size != 1:
        return None
    return np.float32(value.reshape(()))


def _add_initializer(model: ModelWrapper, value: np.ndarray) -> str:
    name = model.make_new_valueinfo_name()
    model.set_initializer(name, value)
    return name


def unit_scale_bipolar(model: ModelWrapper) -> bool:
    """Split every activation ``BipolarQuant(x, s)`` with ``s != 1`` into unit scale + ``Mul``."""
    changed = False
    for node in list(model.graph.node):
        if node.op_type != "BipolarQuant" or model.get_initializer(node.input[0]) is not None:
            continue
        scale = model.get_initializer(node.input[1])
        if scale is None or scale.size != 1 or float(scale.reshape(())) == 1.0:
            continue
        mid = model.make_new_valueinfo_name()
        mul = helper.make_node("Mul", [mid, node.input[1]], [node.output[0]])
        node.input[1] = _add_initializer(model, np.ones_like(scale, dtype=np.float32))
        node.output[0] = mid
        model.graph.node.insert(list(model.graph.node).index(node) + 1, mul)
        changed = True
    return changed


def _unfork_scalar_muls(model: ModelWrapper) -> bool:
    """Give each consumer of a forking scalar ``Mul`` a ``Mul`` of its own."""
    changed = False
    for node in list(model.graph.node):
        if _scalar_mul_value(model, node) is None:
            continue
        consumers = model.find_consumers(node.output[0])
        for consumer in consumers[1:]:
            out = model.make_new_valueinfo_name()
            twin = helper.make_node("Mul", [node.input[0], node.input[1]], [out])
            model.graph.node.insert(list(model.graph.node).index(node) + 1, twin)
            for i, name in enumerate(consumer.input):
                if name == node.output[0]:
                    consumer.input[i] = out
            changed = True
    return changed


def _place_after(model: ModelWrapper, node: NodeProto, anchor: NodeProto) -> None:
    """Move ``node`` to right after ``anchor`` in the node list (the list keeps the exporter's
    order, which is torch's call order)."""
    nodes = model.graph.node
    moved = NodeProto()
    moved.CopyFrom(node)
    nodes.remove(node)
    nodes.insert(list(nodes).index(anchor) + 1, moved)


def _swap(model: ModelWrapper, mul: NodeProto, op: NodeProto) -> None:
    """``op(Mul(x))`` -> ``Mul(op(x))`` for a single-input-tensor ``op`` fed by ``mul``."""
    x, mid, out = mul.input[0], mul.output[0], op.output[0]
    op.input[0] = x
    op.output[0] = mid
    mul.input[0] = mid
    mul.output[0] = out
    _place_after(model, mul, op)


def _move_mul_past_invariant(model: ModelWrapper, op: NodeProto) -> bool:
    mul = model.find_producer(op.input[0])
    s = _scalar_mul_value(model, mul)
    if s is None or len(model.find_consumers(mul.output[0])) != 1:
        return False
    if op.op_type == "Resize":
        mode = get_by_name(op.attribute, "mode")
        if mode is None or mode.s.decode() != "nearest":
            return False
    elif op.op_type == "Pad":
        mode = get_by_name(op.attribute, "mode")
        if mode is not None and mode.s.decode() != "constant":
            return False
        const = model.get_initializer(op.input[2]) if len(op.input) > 2 and op.input[2] else None
        if const is None:
            const = np.zeros((), np.float32)
        new_const = np.float32(const.reshape(())) / s
        if np.float32(new_const * s) != np.float32(const.reshape(())):
            return False
        if len(op.input) > 2 and op.input[2]:
            op.input[2] = _add_initializer(model, np.asarray(new_const, np.float32).reshape(const.shape))
    else:
        return False
    _swap(model, mul, op)
    return True


def _move_mul_past_concat(model: ModelWrapper, concat: NodeProto) -> bool:
    muls = [model.find_producer(name) for name in concat.input]
    scales = [_scalar_mul_value(model, m) for m in muls]
    if any(s is None for s in scales) or len({float(s) for s in scales}) != 1:
        return False
    if len({m.output[0] for m in muls}) != len(muls):  # one Mul feeding several inputs
        return False
    if any(len(model.find_consumers(m.output[0])) != 1 for m in muls):
        return False
    for i, mul in enumerate(muls):
        concat.input[i] = mul.input[0]
    keep = muls[0]
    for mul in muls[1:]:
        model.graph.node.remove(mul)
    mid = model.make_new_valueinfo_name()
    keep.input[0] = mid
    keep.output[0], concat.output[0] = concat.output[0], mid
    _place_after(model, keep, concat)
    return True


def push_scalar_muls(model: ModelWrapper) -> bool:
    """Move scalar ``Mul`` nodes past nearest ``Resize``, equal-scale ``Concat`` and ``Pad``."""
    changed = _unfork_scalar_muls(model)
    progress = True
    while progress:
        progress = False
        for node in list(model.graph.node):
            if node.op_type in ("Resize", "Pad"):
                moved = _move_mul_past_invariant(model, node)
            elif node.op_type == "Concat":
                moved = _move_mul_past_concat(model, node)
            else:
                continue
            if moved:
                progress = changed = True
                _unfork_scalar_muls(model)
                break
    return changed


def vector_zero_points(model: ModelWrapper) -> bool:
    """Reshape 0-d zero points of ``Quant`` nodes to shape ``(1,)``."""
    changed = False
    for node in model.get_nodes_by_op_type("Quant"):
        zero_point = model.get_initializer(node.input[2])
        if zero_point is not None and zero_point.shape == ():
            model.set_initializer(node.input[2], zero_point.reshape(1))
            changed = True
    return changed


def finn_ready(model: ModelWrapper) -> ModelWrapper:
    """Apply all rewrites of this module (node order kept); returns the shape-annotated model."""
    unit_scale_bipolar(model)
    push_scalar_muls(model)
    vector_zero_points(model)
    for value_info in list(model.graph.value_info):
        model.graph.value_info.remove(value_info)
    for transformation in (InferShapes(), RemoveUnusedTensors(), GiveUniqueNodeNames(), GiveReadableTensorNames()):
        model = model.transform(transformation)
    return model
