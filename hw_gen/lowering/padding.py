"""Exact padding of binary activations.

Binary activations have no zero. Two kinds of padding reach us:

* ``-1`` padding (our own models: an explicit ``Pad`` whose constant is ``-scale``). In FINN's
  XNOR encoding bit 0 means -1, so it maps onto FINN's zero-padding layer once the tensor is
  binary: :class:`MoveScalarMulPastPad` brings the pad next to the sign, :class:`FusePadIntoIm2Col`
  hands it to the sliding window, :class:`MapBinaryPadValues` rewrites -1 as bit 0 (the
  unit behind is an XNOR unit, or one with integer weights made to read BINARY by
  :mod:`hw_gen.lowering.xnor`).
* zero padding (users' models: ``padding=`` on a conv, or a ``Pad`` with 0). Torch pads real
  zeros; stock FINN retypes the padded input BINARY and silently pads -1. :class:`ZeroPadToInt2`
  makes the sign that feeds such a pad emit INT2 {-1, +1} (each threshold twice, out_scale 1,
  out_bias -1), so FINN pads real zeros and builds a non-XNOR INT2 x BIPOLAR unit there.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from hw_gen.errors import HwGenError
from hw_gen.lowering.graph import (
    attr,
    bipolar_sources,
    is_positive_scalar_mul,
    node_label,
    pad_amounts,
    scalar_initializer,
    set_attr,
)


class MoveScalarMulPastPad(Transformation):
    """``Mul(s) -> Pad(c)`` becomes ``Pad(c / s) -> Mul(s)`` for a positive scalar ``s`` (the
    Pad gets a Mul of its own when others read the first one too). Scales behind upsampling,
    pooling or a join are brought next to the pad by joins.MoveScalesPastJoins first."""

    def apply(self, model: ModelWrapper):
        graph = model.graph
        for pad in graph.node:
            if pad.op_type != "Pad":
                continue
            mul = model.find_producer(pad.input[0])
            amounts = pad_amounts(model, pad)
            if mul is None or not is_positive_scalar_mul(model, mul) or amounts is None:
                continue
            scale = scalar_initializer(model, mul.input[1])
            value = np.float32(amounts[1]) / np.float32(scale)
            const = model.make_new_valueinfo_name()
            model.set_initializer(const, np.asarray(value, dtype=np.float32))
            while len(pad.input) < 3:
                pad.input.append("")
            pad.input[2] = const
            # rewire: x -> Pad -> Mul -> (old pad consumers)
            padded = model.make_new_valueinfo_name()
            model.set_tensor_shape(padded, model.get_tensor_shape(pad.output[0]))
            scaled = helper.make_node("Mul", [padded, mul.input[1]], [pad.output[0]],
                                      name=f"{mul.name}_{pad.name}")
            pad.input[0], pad.output[0] = mul.input[0], padded
            graph.node.insert(list(graph.node).index(pad) + 1, scaled)
            if not model.find_consumers(mul.output[0]):
                graph.node.remove(mul)
            return model.transform(InferShapes()), True
        return model, False


def _bipolar_pads(model: ModelWrapper):
    """Every pad applied to a bipolar tensor: (node, amounts, integer pad value, signs)."""
    for node in model.graph.node:
        if node.op_type == "Conv":
            pads = attr(node, "pads", [0, 0, 0, 0])
            if any(pads):
                found = bipolar_sources(model, node.input[0])
                if found is not None:
                    yield node, pads, 0.0, found[0]
        elif node.op_type == "Pad":
            amounts = pad_amounts(model, node)
            found = bipolar_sources(model, node.input[0])
            if found is None:
                continue
            signs, scale = found
            if amounts is None:
                raise HwGenError(
                    f"{node_label(node)}: only constant padding of H and W is supported on "
                    "binary activations"
                )
            yield node, amounts[0], amounts[1] / scale, signs


class ZeroPadToInt2(Transformation):
    """Make every bipolar sign whose output is zero-padded emit INT2 {-1, +1}."""

    def apply(self, model: ModelWrapper):
        changed = False
        pads = list(_bipolar_pads(model))
        minus_one = {id(s): node for node, _, value, signs in pads if value == -1.0 for s in signs}
        for node, _, value, signs in pads:
            if value == -1.0:
                continue
            if value != 0.0:
                raise HwGenError(
                    f"{node_label(node)}: pads a binary activation with {value:g}; "
                    "only 0 (zero padding) and -1 (our models' padding) are supported"
                )
            for sign in signs:
                if id(sign) in minus_one:
                    raise HwGenError(
                        f"{node_label(sign)}: its binary output is padded with 0 by "
                        f"{node_label(node)} and with -1 by {node_label(minus_one[id(sign)])}; "
                        "one binary activation takes one padding value"
                    )
                if attr(sign, "out_dtype") != "BIPOLAR":
                    continue
                thresholds = model.get_initializer(sign.input[1])
                model.set_initializer(sign.input[1], np.repeat(thresholds, 2, axis=1))
                for name, setting in (("out_dtype", "INT2"), ("out_scale", 1.0),
                                      ("out_bias", -1.0)):
                    set_attr(sign, name, setting)
                changed = True
        if changed:
            model = model.transform(InferDataTypes())
        return model, False


class FusePadIntoIm2Col(Transformation):
    """``Pad(v) -> Transpose(NCHW->NHWC) -> Im2Col`` becomes ``Transpose -> Im2Col`` with the
    padding (amounts and value) on the Im2Col, where FINN's sliding window takes it."""

    def apply(self, model: ModelWrapper):
        for pad in model.graph.node:
            if pad.op_type != "Pad":
                continue
            consumers = model.find_consumers(pad.output[0]) or []
            if len(consumers) != 1 or consumers[0].op_type != "Transpose":
                continue
            transpose = consumers[0]
            if list(attr(transpose, "perm", [])) != [0, 2, 3, 1]:
                continue
            im2cols = model.find_consumers(transpose.output[0]) or []
            if not im2cols or any(c.op_type != "Im2Col" for c in im2cols):
                continue
            amounts = pad_amounts(model, pad)
            if amounts is None:
                continue
            pads, value = amounts
            if value != round(value):
                raise HwGenError(f"{node_label(pad)}: pad value {value:g} is not an integer")
            for im2col in im2cols:
                if any(attr(im2col, "pad_amount", [0, 0, 0, 0])):
                    raise HwGenError(
                        f"{node_label(im2col)}: an explicit Pad before a padded convolution"
                    )
            transpose.input[0] = pad.input[0]
            for im2col in im2cols:
                set_attr(im2col, "pad_amount", pads)
                set_attr(im2col, "pad_value", int(value))
                shape = model.get_tensor_shape(transpose.output[0])
                shape = [shape[0], shape[1] - pads[0] - pads[2], shape[2] - pads[1] - pads[3], shape[3]]
                set_attr(im2col, "input_shape", str(tuple(shape)))
            model.graph.node.remove(pad)
            out = transpose.output[0]
            shape = model.get_tensor_shape(out)
            model.set_tensor_shape(out, [shape[0], shape[1] - pads[0] - pads[2],
                                         shape[2] - pads[1] - pads[3], shape[3]])
            model = model.transform(InferShapes())
            return model, True
        return model, False


class MapBinaryPadValues(Transformation):
    """After XNOR conversion: -1 padding of a BINARY tensor is bit 0, FINN's zero padding.
    Zero padding of a BINARY tensor cannot be expressed and means ZeroPadToInt2 was skipped."""

    def apply(self, model: ModelWrapper):
        for node in model.graph.node:
            if node.op_type != "Im2Col" or not any(attr(node, "pad_amount", [0, 0, 0, 0])):
                continue
            dt = model.get_tensor_datatype(node.input[0])
            value = attr(node, "pad_value", 0)
            if dt == DataType["BINARY"]:
                if value == -1:
                    set_attr(node, "pad_value", 0)
                else:
                    raise HwGenError(
                        f"{node_label(node)}: pads a binary (XNOR) tensor with {value}; "
                        "the tensor should have been made INT2 before streamlining"
                    )
            elif value != 0:
                raise HwGenError(
                    f"{node_label(node)}: pads a {dt.name} tensor with {value}; FINN's "
                    "padding layer pads zeros only (a binary tensor padded both with 0 and -1?)"
                )
        return model, False
