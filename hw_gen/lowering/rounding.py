"""Half-to-even rounding of multi-bit activation quantizers, reproduced by thresholds.

Brevitas quantizers round half to even; FINN's thresholds fire on ``x >= T`` (half up). A
threshold between the integer levels ``q - 1`` and ``q`` must fire at an exact tie only when
``q`` is even. We tag the MultiThresholds that come from such quantizers when the QONNX
graph is converted (the tag travels on the node through streamlining), and once their inputs
are integers we move each integral threshold whose upper level is odd up by one, so that
``x >= T + 1`` means ``x > T``. Binary (sign) quantizers fire on ``x >= 0`` and are untouched.
"""

from __future__ import annotations

import json

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from hw_gen.errors import HwGenError
from hw_gen.lowering.graph import attr, node_label, set_attr

TIE_ATTR = "hwgen_half_even"
_PENDING = "hwgen.half_even_inputs"


class RecordHalfEvenQuantizers(Transformation):
    """Before ConvertQONNXtoFINN: remember the inputs of multi-bit activation Quant nodes
    that round half to even (the MultiThresholds replacing them will read those tensors)."""

    def apply(self, model: ModelWrapper):
        inputs = []
        for node in model.graph.node:
            if node.op_type != "Quant" or model.get_initializer(node.input[0]) is not None:
                continue
            bits = model.get_initializer(node.input[3])
            if bits is None or float(np.asarray(bits).reshape(-1)[0]) < 2:
                continue
            mode = attr(node, "rounding_mode", "ROUND")
            if mode not in ("ROUND", "ROUND_TO_EVEN", "HALF_EVEN"):
                raise HwGenError(
                    f"{node_label(node)}: rounding mode {mode} is not supported for activations"
                )
            inputs.append(node.input[0])
            producer = model.find_producer(node.input[0])
            if producer is not None and producer.op_type == "Relu":
                inputs.append(producer.input[0])
        model.set_metadata_prop(_PENDING, json.dumps(sorted(set(inputs))))
        return model, False


class TagHalfEvenThresholds(Transformation):
    """After ConvertQONNXtoFINN: tag the MultiThresholds that replaced recorded quantizers."""

    def apply(self, model: ModelWrapper):
        recorded = set(json.loads(model.get_metadata_prop(_PENDING) or "[]"))
        for node in model.graph.node:
            if node.op_type == "MultiThreshold" and node.input[0] in recorded:
                set_attr(node, TIE_ATTR, 1)
        props = [p for p in model.model.metadata_props if p.key != _PENDING]
        del model.model.metadata_props[:]
        model.model.metadata_props.extend(props)
        return model, False


class ApplyHalfEvenTies(Transformation):
    """On tagged MultiThresholds whose input is now integer: integral thresholds whose upper
    level is odd move up by one. Counts thresholds that lie within 1e-4 of an integer without
    being one (their tie, if any, depends on float rounding order) in ``self.near_ties``."""

    def __init__(self) -> None:
        super().__init__()
        self.near_ties = 0

    def apply(self, model: ModelWrapper):
        for node in model.graph.node:
            if node.op_type != "MultiThreshold" or not attr(node, TIE_ATTR, 0):
                continue
            if not model.get_tensor_datatype(node.input[0]).is_integer():
                continue
            if attr(node, "out_scale", 1.0) != 1.0:
                raise HwGenError(f"{node_label(node)}: tagged threshold with out_scale != 1")
            thresholds = np.asarray(model.get_initializer(node.input[1]), dtype=np.float64)
            upper = attr(node, "out_bias", 0.0) + np.arange(1, thresholds.shape[1] + 1)
            odd = (np.round(upper).astype(np.int64) % 2) == 1
            integral = thresholds == np.round(thresholds)
            near = np.abs(thresholds - np.round(thresholds)) < 1e-4
            self.near_ties += int(np.count_nonzero(near & ~integral))
            moved = thresholds + (integral & odd[None, :])
            model.set_initializer(node.input[1], moved.astype(np.float32))
            node.attribute.remove(next(a for a in node.attribute if a.name == TIE_ATTR))
        return model, False
