"""Bilinear Resize onto our FoldedUpsample layer.

FINN maps only nearest upsampling and moves scales only past a nearest Resize, so a linear
Resize keeps a float input. Bilinear interpolation is linear with weights summing to one, so
a scale (Mul) or an offset (Add) before it commutes with it: we move them past, which leaves
the Resize reading the integer output of a quantizer. The Resize then becomes FoldedUpsample
(NHWC, between transposes that the layout clean-up removes), which outputs ``(2F)^2`` times the
interpolated value, followed by ``Mul(1 / (2F)^2)``, which streamlining folds into the next
thresholds.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from hw_gen.errors import HwGenError
from hw_gen.layers.upsample import upsample_output_datatype
from hw_gen.lowering.graph import attr, node_label
from sim.kernels.upsample import bilinear_gain

HALF_PIXEL = ("half_pixel", "pytorch_half_pixel")


def resize_scales(model: ModelWrapper, node) -> np.ndarray | None:
    """A Resize's constant NCHW scales, from its scales or sizes input."""
    if len(node.input) > 2 and node.input[2]:
        scales = model.get_initializer(node.input[2])
        if scales is not None and len(scales):
            return np.asarray(scales, dtype=np.float64)
    if len(node.input) > 3 and node.input[3]:
        sizes = model.get_initializer(node.input[3])
        shape = model.get_tensor_shape(node.input[0])
        if sizes is not None and shape is not None:
            return np.asarray(sizes, dtype=np.float64) / np.asarray(shape, dtype=np.float64)
    return None


def is_bilinear(node) -> bool:
    return node.op_type == "Resize" and attr(node, "mode", "nearest") == "linear"


def _bilinear_factor(model: ModelWrapper, node) -> int:
    scales = resize_scales(model, node)
    label = node_label(node)
    if scales is None or len(scales) != 4:
        raise HwGenError(f"{label}: bilinear upsampling needs constant 4-D scales")
    if scales[0] != 1 or scales[1] != 1 or scales[2] != scales[3]:
        raise HwGenError(f"{label}: bilinear scales {scales.tolist()} are not [1, 1, F, F]")
    factor = scales[2]
    if factor != round(factor) or int(factor) < 2 or int(factor) & (int(factor) - 1):
        raise HwGenError(
            f"{label}: bilinear upsampling by {factor:g} is not supported; factors must be 2^k"
        )
    mode = attr(node, "coordinate_transformation_mode", "half_pixel")
    if mode not in HALF_PIXEL:
        raise HwGenError(
            f"{label}: bilinear coordinate mode {mode} is not supported (align_corners=False "
            "only)"
        )
    return int(factor)


class MoveAffinePastBilinearResize(Transformation):
    """``Mul(c)``/``Add(c)`` with a scalar or per-channel constant before a bilinear Resize
    moves after it."""

    def apply(self, model: ModelWrapper):
        for resize in model.graph.node:
            if not is_bilinear(resize):
                continue
            op = model.find_producer(resize.input[0])
            if op is None or op.op_type not in ("Mul", "Add"):
                continue
            const = model.get_initializer(op.input[1])
            if const is None or len(model.find_consumers(op.output[0]) or []) != 1:
                continue
            shape = model.get_tensor_shape(op.input[0])
            if const.size != 1 and (len(shape) != 4 or const.size != shape[1]):
                continue
            x, mid, out = op.input[0], op.output[0], resize.output[0]
            resize.input[0], resize.output[0] = x, mid
            op.input[0], op.output[0] = mid, out
            graph = model.graph
            graph.node.remove(op)
            graph.node.insert(list(graph.node).index(resize) + 1, op)
            for name in (mid,):
                model.set_tensor_shape(name, model.get_tensor_shape(out))
            return model.transform(InferShapes()), True
        return model, False


class LowerBilinearResize(Transformation):
    """A bilinear Resize of an integer tensor becomes FoldedUpsample and a Mul."""

    def apply(self, model: ModelWrapper):
        for index, resize in enumerate(model.graph.node):
            if not is_bilinear(resize):
                continue
            factor = _bilinear_factor(model, resize)
            x = resize.input[0]
            idt = model.get_tensor_datatype(x)
            if not idt.is_integer():
                raise HwGenError(
                    f"{node_label(resize)}: bilinear upsampling of a {idt.name} tensor; its "
                    "input must be the output of a quantizer (only scales and offsets may sit "
                    "between them)"
                )
            n, c, h, w = model.get_tensor_shape(x)
            odt = upsample_output_datatype(idt, factor, "bilinear")
            names = [model.make_new_valueinfo_name() for _ in range(4)]
            x_nhwc, y_nhwc, y_nchw, gain = names
            shapes = {x_nhwc: [n, h, w, c], y_nhwc: [n, h * factor, w * factor, c],
                      y_nchw: [n, c, h * factor, w * factor]}
            for name, shape in shapes.items():
                model.graph.value_info.append(
                    helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
            model.set_initializer(gain, np.asarray(1.0 / bilinear_gain(factor), dtype=np.float32))
            base = (resize.name or f"Resize_{index}").replace("/", "_").strip("_")
            new_nodes = [
                helper.make_node("Transpose", [x], [x_nhwc], perm=[0, 2, 3, 1]),
                helper.make_node(
                    "FoldedUpsample", [x_nhwc], [y_nhwc], domain="finn.custom_op.fpgadataflow",
                    backend="fpgadataflow", name=f"FoldedUpsample_{base}", NumChannels=c, PE=1,
                    HI=h, WI=w, Factor=factor, Mode="bilinear", inputDataType=idt.name,
                    outputDataType=odt.name, numInputVectors=n,
                ),
                helper.make_node("Transpose", [y_nhwc], [y_nchw], perm=[0, 3, 1, 2]),
                helper.make_node("Mul", [y_nchw, gain], [resize.output[0]]),
            ]
            graph = model.graph
            graph.node.remove(resize)
            for offset, node in enumerate(new_nodes):
                graph.node.insert(index + offset, node)
            model.set_tensor_datatype(y_nhwc, odt)
            model.set_tensor_layout(x_nhwc, ["N", "H", "W", "C"])
            model.set_tensor_layout(y_nhwc, ["N", "H", "W", "C"])
            model = model.transform(InferShapes())
            return model.transform(InferDataTypes()), True
        return model, False
