"""Layout rewrites that replace FINN's where FINN's miswire a graph.

FINN's AbsorbTransposeIntoResize moves an NHWC->NCHW Transpose from before a nearest Resize
to after it, then points input 0 of every reader of the Resize at the moved Transpose,
whichever input the reader took the Resize from: ``concat(a, resize(b))`` became
``concat(resize(b), resize(b))`` (an upsampling joined to a skip, with a wrong channel count
or silently wrong values). :class:`AbsorbTransposeIntoResize` does the same move by swapping
tensor names between the two nodes, so the readers are untouched.

FINN's MakeMaxPoolNHWC and MakeScaleResizeNHWC, for an NCHW MaxPool or Resize followed by an
NCHW->NHWC Transpose, move the Transpose in front and rewire only that first reader: when the
pooled or resized tensor is also read by others (a residual add after pooling, a skip from an
upsampling), those then read the unpooled or unresized input. :class:`MakeForkedNHWC`
handles such a node first: it becomes the NHWC op between two Transposes, and the readers
keep their NCHW tensor.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from hw_gen.lowering.graph import attr

NHWC_TO_NCHW = [0, 3, 1, 2]
NCHW_TO_NHWC = [0, 2, 3, 1]


class AbsorbTransposeIntoResize(Transformation):
    """``Transpose(0,3,1,2) -> Resize(nearest)`` becomes ``Resize (NHWC) -> Transpose``."""

    def apply(self, model: ModelWrapper):
        graph = model.graph
        for transpose in graph.node:
            if transpose.op_type != "Transpose" or list(attr(transpose, "perm", [])) != NHWC_TO_NCHW:
                continue
            readers = model.find_consumers(transpose.output[0]) or []
            if len(readers) != 1 or readers[0].op_type != "Resize":
                continue
            resize = readers[0]
            if attr(resize, "mode", "nearest") != "nearest" or resize.input[0] != transpose.output[0]:
                continue
            scales = _scales(model, resize)
            if scales is None:
                continue
            _set_nhwc_scales(model, resize, scales)
            nhwc_in, out = transpose.input[0], resize.output[0]
            bn, co, ho, wo = model.get_tensor_shape(out)
            mid = model.make_new_valueinfo_name()
            model.set_tensor_shape(mid, [bn, ho, wo, co])
            model.set_tensor_datatype(mid, model.get_tensor_datatype(nhwc_in))
            model.set_tensor_layout(mid, ["N", "H", "W", "C"])
            resize.input[0], resize.output[0] = nhwc_in, mid
            transpose.input[0], transpose.output[0] = mid, out
            graph.node.remove(transpose)
            graph.node.insert(list(graph.node).index(resize) + 1, transpose)
            if model.get_tensor_datatype(out) == DataType["FLOAT32"]:
                model.set_tensor_datatype(out, model.get_tensor_datatype(mid))
            return model, True
        return model, False


def _scales(model: ModelWrapper, resize) -> np.ndarray | None:
    """The Resize's NCHW scales, from its scales input or from its sizes input."""
    scales = model.get_initializer(resize.input[2]) if len(resize.input) > 2 and resize.input[2] else None
    if scales is not None and scales.size == 4:
        return np.asarray(scales, dtype=np.float64)
    sizes = model.get_initializer(resize.input[3]) if len(resize.input) > 3 else None
    if sizes is None or sizes.size != 4:
        return None
    return np.asarray(sizes, dtype=np.float64) / np.asarray(model.get_tensor_shape(resize.input[0]))


class MakeForkedNHWC(Transformation):
    """An NCHW MaxPool or nearest Resize read by several nodes becomes the same op in NHWC
    between two Transposes (the readers keep their NCHW tensor)."""

    def apply(self, model: ModelWrapper):
        graph = model.graph
        for node in graph.node:
            if len(model.find_consumers(node.output[0]) or []) < 2:
                continue
            if node.op_type == "MaxPool" and len(attr(node, "kernel_shape", [])) == 2:
                node.op_type, node.domain = "MaxPoolNHWC", "qonnx.custom_op.general"
                if attr(node, "ceil_mode") is None:
                    node.attribute.append(helper.make_attribute("ceil_mode", 0))
            elif node.op_type == "Resize" and attr(node, "mode", "nearest") == "nearest":
                scales = _scales(model, node)
                if scales is None or scales[1] != 1 or scales[2:].tolist() == [1, 1]:
                    continue  # not an NCHW resize of H and W (an NHWC one scales index 1)
                _set_nhwc_scales(model, node, scales)
            else:
                continue
            x, y = node.input[0], node.output[0]
            b, c, hi, wi = model.get_tensor_shape(x)
            _, _, ho, wo = model.get_tensor_shape(y)
            x_nhwc, y_nhwc = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
            for name, shape in ((x_nhwc, [b, hi, wi, c]), (y_nhwc, [b, ho, wo, c])):
                model.set_tensor_shape(name, shape)
                model.set_tensor_datatype(name, model.get_tensor_datatype(x))
                model.set_tensor_layout(name, ["N", "H", "W", "C"])
            node.input[0], node.output[0] = x_nhwc, y_nhwc
            index = list(graph.node).index(node)
            graph.node.insert(index, helper.make_node("Transpose", [x], [x_nhwc],
                                                      perm=NCHW_TO_NHWC))
            graph.node.insert(index + 2, helper.make_node("Transpose", [y_nhwc], [y],
                                                          perm=NHWC_TO_NCHW))
            return model, True
        return model, False


def _set_nhwc_scales(model: ModelWrapper, resize, scales: np.ndarray) -> None:
    n, c, h, w = scales
    name = model.make_new_valueinfo_name()
    model.set_initializer(name, np.asarray([n, h, w, c], dtype=np.float32))
    while len(resize.input) < 3:
        resize.input.append("")
    resize.input[2] = name
    del resize.input[3:]
