"""Scales past joins, so that an add or a concat of quantized tensors works on integers.

After ConvertQONNXtoFINN each multi-bit (or scaled binary) activation is a MultiThreshold
followed by ``Mul(scale)``. FINN's Streamline moves such a Mul past MatMuls and into the next
thresholds, but not past a join or a fork: an Add or Concat of two quantized tensors keeps
float inputs and cannot become a hardware layer. When every input of the join carries the
same scalar scale (the two branches share a quantizer), ``Mul(s) a + Mul(s) b`` is
``Mul(s) (a + b)`` and ``concat(Mul(s) a, Mul(s) b)`` is ``Mul(s) concat(a, b)``: this pass
makes those rewrites, copying a Mul or Add by a constant that several nodes read into one per
reader first (FINN's absorptions skip forks, e.g. an XNOR unit's ``2 p - K`` read by two
thresholds), and moving positive scalar Muls past max pooling and nearest resizing. Joins of
differently scaled tensors are left alone (and are reported as unmapped later).
"""

from __future__ import annotations

import copy

from onnx import NodeProto
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from hw_gen.lowering.graph import scalar_initializer

JOINS = ("Add", "Concat")


def _scalar_mul(model: ModelWrapper, node: NodeProto | None) -> float | None:
    if node is None or node.op_type != "Mul" or model.get_initializer(node.input[0]) is not None:
        return None
    return scalar_initializer(model, node.input[1])


def _constant_operand(model: ModelWrapper, node: NodeProto) -> bool:
    """A Mul or Add of a dynamic tensor and a constant."""
    return (
        node.op_type in ("Mul", "Add") and len(node.input) == 2
        and model.get_initializer(node.input[0]) is None
        and model.get_initializer(node.input[1]) is not None
    )


def _split_forks(model: ModelWrapper) -> bool:
    """Give each reader of a Mul or Add by a constant that several nodes read its own copy
    (FINN's absorptions into thresholds and its moves past MatMuls skip forks)."""
    changed = False
    outputs = {o.name for o in model.graph.output}
    for node in list(model.graph.node):
        consumers = model.find_consumers(node.output[0]) or []
        if len(consumers) < 2 or not _constant_operand(model, node) or node.output[0] in outputs:
            continue
        for consumer in consumers[1:]:
            twin = copy.deepcopy(node)
            twin.name = ""
            twin.output[0] = model.make_new_valueinfo_name()
            model.graph.node.insert(list(model.graph.node).index(node) + 1, twin)
            for i, t in enumerate(consumer.input):
                if t == node.output[0]:
                    consumer.input[i] = twin.output[0]
        changed = True
    return changed


def _move_past_joins(model: ModelWrapper) -> bool:
    changed = False
    for join in list(model.graph.node):
        if join.op_type not in JOINS:
            continue
        dynamic = [t for t in join.input if model.get_initializer(t) is None]
        if len(dynamic) != len(join.input) or len(dynamic) < 2:
            continue
        producers = [model.find_producer(t) for t in dynamic]
        scales = [_scalar_mul(model, p) for p in producers]
        if None in scales or len(set(scales)) != 1:
            continue
        if any(len(model.find_consumers(p.output[0]) or []) != 1 for p in producers):
            continue
        # join(x_i * s) -> join(x_i) * s, reusing the first Mul after the join
        first = producers[0]
        joined = model.make_new_valueinfo_name()
        for i, p in enumerate(producers):
            join.input[i] = p.input[0]
        out = join.output[0]
        join.output[0] = joined
        first.input[0] = joined
        first.output[0] = out
        for p in producers[1:]:
            model.graph.node.remove(p)
        graph = model.graph
        graph.node.remove(first)
        graph.node.insert(list(graph.node).index(join) + 1, first)
        changed = True
    return changed


class MoveScalesPastJoins(Transformation):
    def apply(self, model: ModelWrapper):
        from finn.transformation.streamline.reorder import (
            MoveMulPastMaxPool,
            MoveScalarLinearPastInvariants,
        )

        touched = False
        while True:
            changed = _split_forks(model)
            if _scale_before_mover(model):
                if changed:
                    model = model.transform(InferShapes())
                before = _signature(model)
                model = model.transform(MoveMulPastMaxPool())
                model = model.transform(MoveScalarLinearPastInvariants())
                changed |= before != _signature(model)
            changed |= _move_past_joins(model)
            if not changed:
                break
            touched = True
            model = model.transform(InferShapes())
        return (model.transform(InferDataTypes()) if touched else model), False


def _signature(model: ModelWrapper) -> list:
    return [(n.op_type, tuple(n.input)) for n in model.graph.node]


def _scale_before_mover(model: ModelWrapper) -> bool:
    """A scalar Mul read only by a MaxPool, a Resize or a layout op (FINN's moves apply)."""
    movers = ("MaxPool", "Resize", "Upsample", "Transpose", "Reshape", "Flatten")
    for node in model.graph.node:
        if _scalar_mul(model, node) is None:
            continue
        readers = model.find_consumers(node.output[0]) or []
        if len(readers) == 1 and readers[0].op_type in movers:
            return True
    return False
