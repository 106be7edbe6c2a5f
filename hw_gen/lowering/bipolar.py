"""Binary activations that FINN's conversions refuse although they are exact.

* A binary activation with a scale other than 1 (``BipolarQuant(x, s)``, e.g. Brevitas'
  ``SignedBinaryActPerTensorConst`` with ``max_val=s``) is ``s * sign(x)``: before
  ConvertQONNXtoFINN (which accepts only scale 1) :class:`UnitScaleBipolarQuant` makes it
  ``Mul(s)`` after a unit-scale BipolarQuant; streamlining then moves ``s`` like any scale.
* A sign threshold that no matrix-vector unit absorbs (it reads an add, or the unit's output
  also feeds another threshold) is a MultiThreshold with ``out_scale 2, out_bias -1``, which
  FINN's InferThresholdingLayer rejects (it wants out_scale 1). FINN's Thresholding layer
  emits bit 0/1 and reads it as -1/+1 when its output type is BIPOLAR, so such a threshold is
  converted with ``out_scale 1, out_bias 0`` (:class:`InferThresholdingLayers`).
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_shapes import InferShapes

from hw_gen.errors import HwGenError
from hw_gen.lowering.graph import attr, node_label, set_attr


class UnitScaleBipolarQuant(Transformation):
    """``BipolarQuant(x, s)`` on an activation becomes ``Mul(s) . BipolarQuant(x, 1)``."""

    def apply(self, model: ModelWrapper):
        graph = model.graph
        for node in list(graph.node):
            if node.op_type != "BipolarQuant" or model.get_initializer(node.input[0]) is not None:
                continue
            scale = model.get_initializer(node.input[1])
            if scale is None or scale.size != 1 or not float(scale.reshape(-1)[0]) > 0:
                raise HwGenError(
                    f"{node_label(node)}: binary activation scale must be one positive number"
                )
            s = float(scale.reshape(-1)[0])
            if s == 1.0:
                continue
            one, s_name, signs = (model.make_new_valueinfo_name() for _ in range(3))
            model.set_initializer(one, np.asarray(1.0, dtype=np.float32))
            model.set_initializer(s_name, np.asarray(s, dtype=np.float32))
            node.input[1] = one
            out = node.output[0]
            node.output[0] = signs
            shape = model.get_tensor_shape(out)
            graph.value_info.append(helper.make_tensor_value_info(signs, TensorProto.FLOAT, shape))
            mul = helper.make_node("Mul", [signs, s_name], [out], name=node.name + "_scale")
            graph.node.insert(list(graph.node).index(node) + 1, mul)
        return model.transform(InferShapes()), False


def _is_sign(node) -> bool:
    return (
        node.op_type == "MultiThreshold"
        and attr(node, "out_dtype") == "BIPOLAR"
        and attr(node, "out_scale", 1.0) == 2.0
        and attr(node, "out_bias", 0.0) == -1.0
    )


class InferThresholdingLayers(Transformation):
    """FINN's InferThresholdingLayer, also for stand-alone sign thresholds."""

    def apply(self, model: ModelWrapper):
        from finn.transformation.fpgadataflow.convert_to_hw.thresholding import (
            InferThresholdingLayer,
        )

        signs = set()
        for node in model.graph.node:
            if _is_sign(node):
                set_attr(node, "out_scale", 1.0)
                set_attr(node, "out_bias", 0.0)
                signs.add(node.output[0])
        model = model.transform(InferThresholdingLayer())
        for node in model.graph.node:  # any left as MultiThreshold keep their meaning
            if node.op_type == "MultiThreshold" and node.output[0] in signs:
                set_attr(node, "out_scale", 2.0)
                set_attr(node, "out_bias", -1.0)
        return model, False
