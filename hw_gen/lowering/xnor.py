"""Bipolar matrix products to XNOR-popcount, for branching graphs.

qonnx's ConvertBipolarMatMulToXnorPopcount retypes the sign that feeds a bipolar MatMul to
BINARY {0, 1}, but it follows only the first input of each upstream node (so behind a Concat
one branch stays bipolar) and it retypes the sign for every consumer (so an Add or a
threshold on the same sign then sees 0 where it should see -1). Both are silent errors.

Here every sign (bipolar MultiThreshold) behind a bipolar MatMul is found through the ops
that only move values (Concat, Resize, MaxPool, Im2Col, layout ops). Where values of a sign
reach XNOR units and other consumers, the sign (and the value-moving ops between it and the
fork, e.g. a concat read by an XNOR unit and by an add) is duplicated first, so each copy
feeds only XNOR units or only the rest; then the XNOR-side signs emit BINARY and each MatMul becomes XnorPopcountMatMul with
``2 * popcount - K`` restoring the bipolar dot product.

A MatMul with integer weights whose bipolar input is padded with -1 (an Im2Col with
``pad_value -1``) is handled the same way: FINN's padding layer pads zeros only, which in
BINARY means -1. Its signs emit BINARY b = (x + 1) / 2 and ``x . W = 2 (b . W) - sum(W)``.
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
from hw_gen.lowering.graph import (
    VALUE_MOVERS,
    attr,
    bipolar_sources,
    is_positive_scalar_mul,
    node_label,
    set_attr,
)



def _is_sign(node) -> bool:
    return node.op_type == "MultiThreshold" and attr(node, "out_dtype") == "BIPOLAR"


def _is_bipolar_matmul(model: ModelWrapper, node) -> bool:
    return (
        node.op_type == "MatMul"
        and model.get_tensor_datatype(node.input[0]) == DataType["BIPOLAR"]
        and model.get_tensor_datatype(node.input[1]) == DataType["BIPOLAR"]
        and model.get_initializer(node.input[1]) is not None
    )


def _is_minus1_padded_matmul(model: ModelWrapper, node) -> bool:
    """A MatMul with constant non-bipolar weights reading a bipolar Im2Col padded with -1."""
    if node.op_type != "MatMul" or model.get_initializer(node.input[1]) is None:
        return False
    if model.get_tensor_datatype(node.input[0]) != DataType["BIPOLAR"]:
        return False
    im2col = model.find_producer(node.input[0])
    return (
        im2col is not None and im2col.op_type == "Im2Col"
        and any(attr(im2col, "pad_amount", [0, 0, 0, 0])) and attr(im2col, "pad_value", 0) == -1
    )


def _reads_binary(model: ModelWrapper, node) -> bool:
    """MatMuls whose bipolar input is to be fed as BINARY: XNOR units and -1-padded ones."""
    return _is_bipolar_matmul(model, node) or _is_minus1_padded_matmul(model, node)


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
        if _reads_binary(model, consumer):
            verdicts.add(True)
        elif consumer.op_type in VALUE_MOVERS:
            sub = _feeds_only_xnor(model, consumer.output[0])
            verdicts.add(sub)
        else:
            verdicts.add(False)
    if not verdicts:
        return False
    return verdicts.pop() if len(verdicts) == 1 else None


def _verdict(model: ModelWrapper, consumer) -> bool | None:
    if _reads_binary(model, consumer):
        return True
    if consumer.op_type in VALUE_MOVERS:
        return _feeds_only_xnor(model, consumer.output[0])
    return False


def _separate(model: ModelWrapper, tensor: str) -> None:
    """Rewire the readers of bipolar ``tensor`` that lead only to XNOR units to a copy of
    ``tensor`` (copies of the signs and value-moving ops behind it), after separating the
    readers that are value-moving ops leading both ways in the same manner."""
    for consumer in model.find_consumers(tensor) or []:
        if consumer.op_type in VALUE_MOVERS and _verdict(model, consumer) is None:
            _separate(model, consumer.output[0])
    consumers = model.find_consumers(tensor) or []
    xnor_side = [c for c in consumers if _verdict(model, c)]
    if not xnor_side or len(xnor_side) == len(consumers):
        return
    twin = _copy_upstream(model, tensor)
    for consumer in xnor_side:
        for i, t in enumerate(consumer.input):
            if t == tensor:
                consumer.input[i] = twin


def _copy_upstream(model: ModelWrapper, tensor: str) -> str:
    """A new tensor with the values of ``tensor``, computed by copies of the signs and
    value-moving ops (or positive scalar Muls) that produce it."""
    node = model.find_producer(tensor)
    if node is None or not (_is_sign(node) or node.op_type in VALUE_MOVERS
                            or is_positive_scalar_mul(model, node)):
        where = node_label(node) if node is not None else tensor
        raise HwGenError(f"{where}: cannot copy its bipolar values for an XNOR unit")
    twin = copy.deepcopy(node)
    twin.name = node.name + "_xnor"
    if not _is_sign(node):
        for i, t in enumerate(node.input):
            if t and model.get_initializer(t) is None:
                twin.input[i] = _copy_upstream(model, t)
    out = model.make_new_valueinfo_name()
    twin.output[0] = out
    shape = model.get_tensor_shape(tensor)
    model.graph.value_info.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, shape))
    model.set_tensor_datatype(out, model.get_tensor_datatype(tensor))
    layout = model.get_tensor_layout(tensor)
    if layout is not None:
        model.set_tensor_layout(out, layout)
    model.graph.node.insert(list(model.graph.node).index(node) + 1, twin)
    return out


class ConvertBipolarToXnor(Transformation):
    def apply(self, model: ModelWrapper):
        matmuls = [n for n in model.graph.node if _reads_binary(model, n)]
        if not matmuls:
            return model, False
        signs = {id(s): s for mm in matmuls for s in signs_behind(model, mm.input[0])}
        for sign in signs.values():
            if _feeds_only_xnor(model, sign.output[0]) is None:
                _separate(model, sign.output[0])
        # after splitting, recollect: the XNOR-side signs
        matmuls = [n for n in model.graph.node if _reads_binary(model, n)]
        xnor = {mm.output[0] for mm in matmuls if _is_bipolar_matmul(model, mm)}
        # collect every XNOR-side sign before retyping any: a sign reached from several
        # MatMuls is no longer bipolar once the first of them has been handled
        xnor_signs = {id(s): s for mm in matmuls for s in signs_behind(model, mm.input[0])}
        for sign in xnor_signs.values():
            set_attr(sign, "out_dtype", "BINARY")
            set_attr(sign, "out_scale", 1.0)
            set_attr(sign, "out_bias", 0.0)
        outputs = [mm.output[0] for mm in matmuls]
        model = model.transform(InferDataTypes())
        for out in outputs:
            mm = model.find_producer(out)
            if model.get_tensor_datatype(mm.input[0]) != DataType["BINARY"]:
                raise HwGenError(f"{node_label(mm)}: input did not become binary")
            if out in xnor:
                _to_xnor_popcount(model, mm)
            else:
                w = model.get_initializer(mm.input[1])
                _restore_bipolar_product(model, mm, -w.sum(axis=0))
        model = model.transform(InferShapes())
        model = model.transform(InferDataTypes())
        return model, False


def _to_xnor_popcount(model: ModelWrapper, mm) -> None:
    w = model.get_initializer(mm.input[1])
    k = w.shape[0]
    model.set_initializer(mm.input[1], ((w + 1) / 2).astype(np.float32))
    model.set_tensor_datatype(mm.input[1], DataType["BINARY"])
    mm.op_type = "XnorPopcountMatMul"
    mm.domain = "qonnx.custom_op.general"
    _restore_bipolar_product(model, mm, np.asarray([-float(k)]), "UINT32")


def _restore_bipolar_product(model: ModelWrapper, mm, offset: np.ndarray,
                             raw_type: str | None = None) -> None:
    """``mm`` now reads b = (x + 1) / 2: append ``2 * mm + offset`` to give back ``x . W``."""
    shape = model.get_tensor_shape(mm.output[0])
    result = mm.output[0]
    popcount = model.make_new_valueinfo_name()
    doubled = model.make_new_valueinfo_name()
    for name in (popcount, doubled):
        model.graph.value_info.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    mm.output[0] = popcount
    if raw_type is not None:
        model.set_tensor_datatype(popcount, DataType[raw_type])
    two, minus_k = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
    model.set_initializer(two, np.asarray([2.0], dtype=np.float32))
    model.set_initializer(minus_k, np.asarray(offset, dtype=np.float32))
    index = next(i for i, n in enumerate(model.graph.node) if n.output[0] == popcount)
    model.graph.node.insert(index + 1, helper.make_node("Mul", [popcount, two], [doubled]))
    model.graph.node.insert(index + 2, helper.make_node("Add", [doubled, minus_k], [result]))


class InferXnorMatrixVectorActivation(Transformation):
    """FINN's InferBinaryMatrixVectorActivation, with the activation offset of each absorbed
    threshold kept. FINN sets ``ActVal`` to the output type's minimum, which is the offset of
    FINN's own activations but not of our INT2 signs (out_bias -1, two equal thresholds: -1
    or +1), whose XNOR units then emitted -2 or 0."""

    def apply(self, model: ModelWrapper):
        from finn.transformation.fpgadataflow.convert_to_hw.binary_matrix_vector_activation import (  # noqa: E501
            InferBinaryMatrixVectorActivation,
        )
        from qonnx.custom_op.registry import getCustomOp

        offsets = {}
        for node in model.graph.node:
            if node.op_type != "XnorPopcountMatMul":
                continue
            readers = model.find_consumers(node.output[0]) or []
            if len(readers) == 1 and readers[0].op_type == "MultiThreshold":
                mt = readers[0]
                if attr(mt, "out_dtype") not in ("BIPOLAR", "BINARY"):
                    if attr(mt, "out_scale", 1.0) != 1.0:
                        raise HwGenError(f"{node_label(mt)}: out_scale must be 1 after an XNOR unit")
                    offsets[mt.output[0]] = int(attr(mt, "out_bias", 0.0))
        model = model.transform(InferBinaryMatrixVectorActivation())
        for node in model.graph.node:
            if node.op_type == "MVAU" and node.output[0] in offsets:
                getCustomOp(node).set_nodeattr("ActVal", offsets[node.output[0]])
        return model, False
