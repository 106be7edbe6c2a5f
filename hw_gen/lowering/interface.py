"""The graph's two ends, shaped for a board user.

In: raw UINT8 pixels in NHWC. A model whose first node is an unsigned 8-bit ``Quant`` with
zero point 0 on the graph input takes ``k * scale`` for an integer pixel ``k``, which that
Quant leaves unchanged; we replace the float NCHW input and the Quant by a UINT8 NHWC input,
a Transpose and a ``Mul(scale)`` that streamlining folds into the first layer's thresholds.

Out: the float logits (the integer accumulators of the last layer, scaled in software) and,
where the scaling is monotonic (a positive scalar factor and a scalar offset), the per-pixel
labels as FINN's LabelSelect over the integers (first index wins on ties, as torch's argmax).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.infer_shapes import InferShapes

from hw_gen.errors import HwGenError
from hw_gen.lowering.graph import attr, scalar_initializer

INPUT_NAME = "pixels"
LOGITS_NAME = "logits"
LABELS_NAME = "labels"


@dataclass
class InputInfo:
    kind: str  # "uint8_nhwc" or "float"
    scale: float | None


def make_uint8_input(model: ModelWrapper) -> tuple[ModelWrapper, InputInfo]:
    """Replace an 8-bit unsigned input quantizer by a UINT8 NHWC graph input (see module doc)."""
    graph = model.graph
    if len(graph.input) != 1:
        raise HwGenError(f"the model has {len(graph.input)} inputs; one image input is supported")
    x = graph.input[0].name
    consumers = model.find_consumers(x) or []
    quant = consumers[0] if len(consumers) == 1 else None
    if quant is None or quant.op_type != "Quant":
        return model, InputInfo("float", None)
    scale = scalar_initializer(model, quant.input[1])
    zero = scalar_initializer(model, quant.input[2])
    bits = scalar_initializer(model, quant.input[3])
    if (
        scale is None or zero != 0.0 or bits != 8.0
        or attr(quant, "signed", 1) != 0 or attr(quant, "narrow", 0) != 0
    ):
        return model, InputInfo("float", None)
    shape = model.get_tensor_shape(x)
    if len(shape) != 4:
        return model, InputInfo("float", None)
    n, c, h, w = shape
    new_in = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [n, h, w, c])
    nchw = model.make_new_valueinfo_name()
    scale_t = model.make_new_valueinfo_name()
    model.set_initializer(scale_t, np.asarray(scale, dtype=np.float32))
    transpose = helper.make_node("Transpose", [INPUT_NAME], [nchw], perm=[0, 3, 1, 2])
    mul = helper.make_node("Mul", [nchw, scale_t], [quant.output[0]])
    index = list(graph.node).index(quant)
    graph.node.remove(quant)
    graph.node.insert(index, mul)
    graph.node.insert(index, transpose)
    graph.input.remove(graph.input[0])
    graph.input.append(new_in)
    model.set_tensor_datatype(INPUT_NAME, DataType["UINT8"])
    model.set_tensor_layout(INPUT_NAME, ["N", "H", "W", "C"])
    model = model.transform(InferShapes())
    return model, InputInfo("uint8_nhwc", scale)


def tail_is_monotonic(model: ModelWrapper, start: str) -> bool:
    """True if every node from ``start`` to the graph output is a positive scalar Mul, a
    scalar Add or a layout op, so that argmax over ``start`` equals argmax over the output."""
    tensor = start
    while tensor != model.graph.output[0].name:
        consumers = model.find_consumers(tensor) or []
        if len(consumers) != 1:
            return False
        node = consumers[0]
        if node.op_type == "Mul":
            value = scalar_initializer(model, node.input[1])
            if value is None or value <= 0:
                return False
        elif node.op_type == "Add":
            if scalar_initializer(model, node.input[1]) is None:
                return False
        elif node.op_type not in ("Transpose", "Reshape", "Identity"):
            return False
        tensor = node.output[0]
    return True
