"""Small queries over a qonnx ModelWrapper that our lowering passes share."""

from __future__ import annotations

import numpy as np
from onnx import NodeProto
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import get_by_name


def attr(node: NodeProto, name: str, default=None):
    """A node attribute's Python value (ints, floats, strings decoded), or ``default``."""
    a = get_by_name(node.attribute, name)
    if a is None:
        return default
    from onnx import helper

    value = helper.get_attribute_value(a)
    return value.decode() if isinstance(value, bytes) else value


def set_attr(node: NodeProto, name: str, value) -> None:
    """Set (replace) a node attribute."""
    from onnx import helper

    for a in [a for a in node.attribute if a.name == name]:
        node.attribute.remove(a)
    node.attribute.append(helper.make_attribute(name, value))


def scalar_initializer(model: ModelWrapper, tensor: str) -> float | None:
    """The value of a constant tensor that holds a single number, else None."""
    value = model.get_initializer(tensor)
    if value is None or value.size != 1:
        return None
    return float(value.reshape(-1)[0])


def is_positive_scalar_mul(model: ModelWrapper, node: NodeProto) -> bool:
    if node.op_type != "Mul":
        return False
    value = scalar_initializer(model, node.input[1])
    return value is not None and value > 0


# Ops that move or select values without changing them.
VALUE_MOVERS = {"Concat", "Resize", "Upsample", "MaxPool", "MaxPoolNHWC", "Im2Col", "Transpose",
                "Reshape", "Flatten", "Identity"}


def bipolar_sources(model: ModelWrapper, tensor: str) -> tuple[list[NodeProto], float] | None:
    """The bipolar signs (MultiThreshold, out_dtype BIPOLAR) whose values reach ``tensor``
    through positive scalar Muls and value-moving ops, and the scale they carry there
    (``tensor == scale * sign``); None if some value of ``tensor`` comes from elsewhere."""
    producer = model.find_producer(tensor)
    if producer is None:
        return None
    if producer.op_type == "MultiThreshold":
        return ([producer], 1.0) if attr(producer, "out_dtype") == "BIPOLAR" else None
    if is_positive_scalar_mul(model, producer):
        inner = bipolar_sources(model, producer.input[0])
        if inner is None:
            return None
        return inner[0], inner[1] * scalar_initializer(model, producer.input[1])
    if producer.op_type not in VALUE_MOVERS:
        return None
    signs: list[NodeProto] = []
    scales = set()
    for t in producer.input:
        if not t or model.get_initializer(t) is not None:
            continue
        inner = bipolar_sources(model, t)
        if inner is None:
            return None
        signs += [s for s in inner[0] if all(s is not x for x in signs)]
        scales.add(inner[1])
    if len(scales) != 1:
        return None
    return signs, scales.pop()


def is_bipolar(model: ModelWrapper, tensor: str) -> bool:
    return model.get_tensor_datatype(tensor) == DataType["BIPOLAR"]


def pad_amounts(model: ModelWrapper, pad: NodeProto) -> tuple[list[int], float] | None:
    """For an ONNX Pad over NCHW that pads only H and W with a constant: the amounts as
    [top, left, bottom, right] and the constant; None for any other Pad."""
    mode = attr(pad, "mode", "constant")
    if mode != "constant" or len(pad.input) < 2:
        return None
    pads = model.get_initializer(pad.input[1])
    if pads is None or len(pads) != 8:
        return None
    pads = [int(p) for p in pads]
    if any(pads[i] for i in (0, 1, 4, 5)):
        return None
    if len(pad.input) > 3 and pad.input[3]:
        return None
    value = 0.0
    if len(pad.input) > 2 and pad.input[2]:
        v = scalar_initializer(model, pad.input[2])
        if v is None:
            return None
        value = v
    return [pads[2], pads[3], pads[6], pads[7]], value


def node_label(node: NodeProto) -> str:
    return f"{node.name or '<unnamed>'} ({node.op_type})"


def threshold_matrix(model: ModelWrapper, node: NodeProto) -> np.ndarray:
    return np.asarray(model.get_initializer(node.input[1]), dtype=np.float64)
