"""Bipolar matrix products to XNOR-popcount, for branching graphs.

qonnx's ConvertBipolarMatMulToXnorPopcount retypes the sign that feeds a bipolar MatMul to
BINARY {0, 1}, but it follows only the first input of each upstream node (so behind a Concat
one branch stays bipolar) and it retypes the sign for every consumer (so an Add or a
threshold on the same sign then sees 0 where it should see -1). Both are silent errors.

Here every sign (bipolar MultiThreshold) behind a bipolar MatMul is found through the ops
that only move values (Concat, Resize, MaxPool, Im2Col, layout ops). A sign whose values also
reach other consumers is duplicated first, so each copy feeds only XNOR units or only the
rest; then the XNOR-side signs emit BINARY and each MatMul becomes XnorPopcountMatMul with
``2 * popcount - K`` restoring the bipolar dot product.
"""

from __future__ import annotations

import copy

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from hw_gen.errors import HwGenError
from hw_gen.lowering.graph import VALUE_MOVERS, attr, bipolar_sources, node_label, set_attr



def _is_sign(node) -> bool:
    return node.op_type == "MultiThreshold" and attr(node, "out_dtype") == "BIPOLAR"


def _is_bipolar_matmul(model: ModelWrapper, node) -> bool:
    return (
        node.op_type == "MatMul"
        and model.get_tensor_datatype(node.input[0]) == DataType["BIPOLAR"]
        and model.get_tensor_datatype(node.input[1]) == DataType["BIPOLAR"]
        and model.get_initializer(node.input[1]) is not None
    )


def signs_behind(model: ModelWrapper, tensor: str) -> list:
    """The signs whose values reach ``tensor`` through value-moving ops; error otherwise."""
    found = bipolar_sources(model, tensor)
    if found is None or found[1] != 1.0:
        producer = model.find_producer(tensor)
        where = node_label(producer) if producer is not None else tensor
        raise HwGenError(
            f"{where} produces bipolar values for an XNOR unit that do not all come from "
            "sign activations through value-moving ops"
        )
    return found[0]


def _feeds_only_xnor(model: ModelWrapper, tensor: str) -> bool | None:
    """True if every use of ``tensor`` ends in bipolar MatMuls, False if none does,
    None if mixed."""
    verdicts = set()
    for consumer in model.find_consumers(tensor) or []:
        if _is_bipolar_matmul(model, consumer):
            verdicts.add(True)
        elif consumer.op_type in VALUE_MOVERS:
            sub = _feeds_only_xnor(model, consumer.output[0])
            verdicts.add(sub)
        else:
            verdicts.add(False)
    if not verdicts:
        return False
    return verdicts.pop() if len(verdicts) == 1 else None


def _split_sign(model: ModelWrapper, sign) -> None:
    """Duplicate ``sign`` so that its direct consumers that lead only to XNOR units read a
    copy of their own."""
    xnor_side = []
    for consumer in model.find_consumers(sign.output[0]) or []:
        if _is_bipolar_matmul(model, consumer):
            verdict = True
        elif consumer.op_type in VALUE_MOVERS:
            verdict = _feeds_only_xnor(model, consumer.output[0])
        else:
            verdict = False
        if verdict is None:
            raise HwGenError(
                f"{node_label(consumer)}: its bipolar values feed both XNOR units and other "
                "layers; insert a separate activation for each use"
            )
        if verdict:
            xnor_side.append(consumer)
    twin = copy.deepcopy(sign)
    twin.name = sign.name + "_xnor"
    out = model.make_new_valueinfo_name()
    twin.output[0] = out
    shape = model.get_tensor_shape(sign.output[0])
    model.graph.value_info.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, shape))
    # typed now: the MatMuls it feeds are recognised as bipolar before types are re-inferred
    model.set_tensor_datatype(out, model.get_tensor_datatype(sign.output[0]))
    model.graph.node.insert(list(model.graph.node).index(sign) + 1, twin)
    for consumer in xnor_side:
        for i, t in enumerate(consumer.input):
            if t == sign.output[0]:
                consumer.input[i] = out
    layout = model.get_tensor_layout(sign.output[0])
    if layout is not None:
        model.set_tensor_layout(out, layout)


class ConvertBipolarToXnor(Transformation):
    def apply(self, model: ModelWrapper):
        matmuls = [n for n in model.graph.node if _is_bipolar_matmul(model, n)]
        if not matmuls:
            return model, False
        signs = {id(s): s for mm in matmuls for s in signs_behind(model, mm.input[0])}
        for sign in signs.values():
            if _feeds_only_xnor(model, sign.output[0]) is not True:
                _split_sign(model, sign)
        # after splitting, recollect: the XNOR-side signs
        matmuls = [n for n in model.graph.node if _is_bipolar_matmul(model, n)]
        # all found before any is retyped: a sign may feed several MatMuls
        xnor_signs = {id(s): s for mm in matmuls for s in signs_behind(model, mm.input[0])}
        for sign in xnor_signs.values():
            set_attr(sign, "out_dtype", "BINARY")
            set_attr(sign, "out_scale", 1.0)
            set_attr(sign, "out_bias", 0.0)
        outputs = [mm.output[0] for mm in matmuls]
        model = model.transform(InferDataTypes())
        for out in outputs:
            _to_xnor_popcount(model, model.find_producer(out))
        model = model.transform(InferShapes())
        model = model.transform(InferDataTypes())
        return model, False


def _to_xnor_popcount(model: ModelWrapper, mm) -> None:
    if model.get_tensor_datatype(mm.input[0]) != DataType["BINARY"]:
        raise HwGenError(f"{node_label(mm)}: input did not become binary")
    w = model.get_initializer(mm.input[1])
    k = w.shape[0]
    model.set_initializer(mm.input[1], ((w + 1) / 2).astype(np.float32))
    model.set_tensor_datatype(mm.input[1], DataType["BINARY"])
    mm.op_type = "XnorPopcountMatMul"
    mm.domain = "qonnx.custom_op.general"
    shape = model.get_tensor_shape(mm.output[0])
    result = mm.output[0]
    popcount = model.make_new_valueinfo_name()
    doubled = model.make_new_valueinfo_name()
    for name in (popcount, doubled):
        model.graph.value_info.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    mm.output[0] = popcount
    model.set_tensor_datatype(popcount, DataType["UINT32"])
    two, minus_k = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
    model.set_initializer(two, np.asarray([2.0], dtype=np.float32))
    model.set_initializer(minus_k, np.asarray([-float(k)], dtype=np.float32))
    index = next(i for i, n in enumerate(model.graph.node) if n.output[0] == popcount)
    model.graph.node.insert(index + 1, helper.make_node("Mul", [popcount, two], [doubled]))
    model.graph.node.insert(index + 2, helper.make_node("Add", [doubled, minus_k], [result]))
