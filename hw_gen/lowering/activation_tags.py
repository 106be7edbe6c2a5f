"""Which graph tensor carries which quantized activation of the source model.

The three-way check (:mod:`hw_gen.threeway`) compares, after every lowering step, the integer
activations of the torch model with the tensors of the step graph that carry them. This
module records that correspondence while lowering.

An activation is named by its *id*: the output tensor name of its ``Quant``/``BipolarQuant``
node in the QONNX graph (step ``qonnx_cleanup``; the input interface keeps that name on the
``Mul`` it puts in place of the input quantizer). Before ConvertQONNXtoFINN the tensor named
``id`` itself carries the activation's value, ``scale * q``. ConvertQONNXtoFINN replaces each
quantizer by a MultiThreshold, an optional bias ``Add`` and a ``Mul(scale)`` that ends in the
tensor ``id``; the ``Mul``'s input then carries the integer ``q`` and is tagged (``scale`` 1);
a bipolar quantizer with a scalar scale becomes one MultiThreshold emitting ``scale * q``
into ``id``, which is tagged with that scale. The UINT8 pixel input of the input interface
carries the integers of the input quantizer it replaced and is tagged too.

A tag is an entry ``hwgen_activation`` (JSON ``{"id", "scale", "perm"}``) in qonnx's tensor
annotation, beside ``finn_datatype``: ``ModelWrapper.rename_tensor`` carries it along, and
FINN's conversions to hardware layers keep the output tensor of the MultiThreshold they
absorb. ``perm`` is the layout: the torch tensor is ``np.transpose(tensor, perm)`` (absent:
the torch layout). Where a pass moves a MultiThreshold's output to a new tensor behind a
Transpose (FINN's AbsorbTransposeIntoMultiThreshold), :class:`TagTransposeInputs` tags the
new tensor as well, with the permutation composed.

The encoding is not part of the tag: a tagged tensor's declared DataType says how it encodes
the activation (BINARY: XNOR bits ``b = (q + 1) / 2``; any other integer type: ``q`` itself,
e.g. the INT2 {-1, +1} route of zero-padded signs; a float type: ``scale * q``).

Activations without a counterpart on purpose are listed, with the reason, in the model's
metadata ``hwgen.fused_activations``; any other activation without a tagged tensor fails the
check.
"""

from __future__ import annotations

import json

import numpy as np
from onnx import NodeProto, StringStringEntryProto, TensorAnnotation
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.util.basic import get_by_name

from hw_gen.lowering.graph import attr

TAG_KEY = "hwgen_activation"
FUSED_PROP = "hwgen.fused_activations"
_PENDING = "hwgen.activation_quants"
QUANT_OPS = ("Quant", "BipolarQuant")


def activation_quants(model: ModelWrapper) -> list[NodeProto]:
    """The quantizers of activations (data input not a constant), in graph order."""
    return [
        n for n in model.graph.node
        if n.op_type in QUANT_OPS and model.get_initializer(n.input[0]) is None
    ]


def quant_scale(model: ModelWrapper, node: NodeProto) -> np.ndarray:
    """The scale of a Quant/BipolarQuant node (its second input, a constant)."""
    scale = model.get_initializer(node.input[1])
    if scale is None:
        raise ValueError(f"{node.name} ({node.op_type}): scale is not a constant")
    return np.asarray(scale, dtype=np.float64)


def get_tag(model: ModelWrapper, tensor: str) -> dict | None:
    annotation = get_by_name(model.graph.quantization_annotation, tensor, "tensor_name")
    if annotation is None:
        return None
    entry = get_by_name(annotation.quant_parameter_tensor_names, TAG_KEY, "key")
    return None if entry is None or not entry.value else json.loads(entry.value)


def set_tag(model: ModelWrapper, tensor: str, tag: dict | None) -> None:
    """Tag ``tensor`` (or, with ``None``, remove its tag)."""
    annotations = model.graph.quantization_annotation
    annotation = get_by_name(annotations, tensor, "tensor_name")
    if annotation is None:
        if tag is None:
            return
        annotation = TensorAnnotation(tensor_name=tensor)
        annotations.append(annotation)
    entries = annotation.quant_parameter_tensor_names
    for old in [e for e in entries if e.key == TAG_KEY]:
        entries.remove(old)
    if tag is not None:
        entries.append(StringStringEntryProto(key=TAG_KEY, value=json.dumps(tag, sort_keys=True)))


def tagged_tensors(model: ModelWrapper) -> dict[str, list[tuple[str, dict]]]:
    """Activation id -> [(tensor, tag)] for every tagged tensor the graph uses."""
    used = {t for n in model.graph.node for t in list(n.input) + list(n.output)}
    used |= {t.name for t in model.graph.input} | {t.name for t in model.graph.output}
    found: dict[str, list[tuple[str, dict]]] = {}
    for annotation in model.graph.quantization_annotation:
        if annotation.tensor_name not in used:
            continue
        tag = get_tag(model, annotation.tensor_name)
        if tag is not None:
            found.setdefault(tag["id"], []).append((annotation.tensor_name, tag))
    return found


def fused_activations(model: ModelWrapper) -> dict[str, str]:
    """Activation id -> why the graph has no tensor for it on purpose."""
    return json.loads(model.get_metadata_prop(FUSED_PROP) or "{}")


def mark_fused(model: ModelWrapper, activation_id: str, reason: str) -> None:
    fused = fused_activations(model)
    fused[activation_id] = reason
    model.set_metadata_prop(FUSED_PROP, json.dumps(fused, sort_keys=True))


def _constant(model: ModelWrapper, tensor: str) -> np.ndarray | None:
    value = model.get_initializer(tensor)
    return None if value is None else np.asarray(value, dtype=np.float64)


class RecordActivationQuants(Transformation):
    """Before ConvertQONNXtoFINN: remember each activation quantizer's id and scale, and tag
    the UINT8 pixel input that replaced the input quantizer (see the module doc)."""

    def apply(self, model: ModelWrapper):
        records = []
        for node in activation_quants(model):
            scale = quant_scale(model, node)
            records.append({"id": node.output[0],
                            "scale": float(scale.reshape(-1)[0]) if scale.size == 1 else None})
        model.set_metadata_prop(_PENDING, json.dumps(records))
        for inp in model.graph.input:
            replaced = _replaced_input_quant(model, inp.name)
            if replaced is not None:
                set_tag(model, inp.name, {"id": replaced, "scale": 1.0, "perm": [0, 3, 1, 2]})
        return model, False


def _replaced_input_quant(model: ModelWrapper, name: str) -> str | None:
    """For the input interface's UINT8 pixels -> Transpose -> Mul(scale): the Mul's output,
    which keeps the name of the input quantizer it replaced."""
    if model.get_tensor_datatype(name) != DataType["UINT8"]:
        return None
    consumers = model.find_consumers(name) or []
    if len(consumers) != 1 or consumers[0].op_type != "Transpose":
        return None
    after = model.find_consumers(consumers[0].output[0]) or []
    if len(after) != 1 or after[0].op_type != "Mul":
        return None
    return after[0].output[0]


class TagActivationTensors(Transformation):
    """After ConvertQONNXtoFINN: tag the tensor that carries each recorded activation."""

    def apply(self, model: ModelWrapper):
        records = json.loads(model.get_metadata_prop(_PENDING) or "[]")
        for record in records:
            tensor, scale = _integer_tensor(model, record["id"], record["scale"])
            if tensor is not None:
                set_tag(model, tensor, {"id": record["id"], "scale": scale})
        props = [p for p in model.model.metadata_props if p.key != _PENDING]
        del model.model.metadata_props[:]
        model.model.metadata_props.extend(props)
        return model, False


def _integer_tensor(
    model: ModelWrapper, activation: str, scale: float | None
) -> tuple[str | None, float]:
    """The tensor carrying ``activation`` after conversion and its scale against ``q``."""
    producer = model.find_producer(activation)
    if producer is None:
        return None, 1.0
    if scale == 1.0:
        return activation, 1.0
    if producer.op_type == "Mul":
        factor = _constant(model, producer.input[1])
        if factor is not None and scale is not None and factor.size == 1 and factor.item() == scale:
            return producer.input[0], 1.0
        if factor is not None and scale is None:
            return producer.input[0], 1.0  # per-channel scale: the Mul divides it out
    if producer.op_type == "MultiThreshold" and scale is not None:
        return activation, scale
    return None, 1.0


class TagTransposeInputs(Transformation):
    """A Transpose whose output is tagged has an input carrying the same activation in
    another layout: tag it too, so the tag outlives the Transpose."""

    def apply(self, model: ModelWrapper):
        for node in model.graph.node:
            if node.op_type != "Transpose":
                continue
            tag = get_tag(model, node.output[0])
            if tag is None or get_tag(model, node.input[0]) is not None:
                continue
            rank = len(model.get_tensor_shape(node.output[0]))
            perm = [int(p) for p in attr(node, "perm", list(range(rank))[::-1])]
            outer = tag.get("perm") or list(range(rank))
            set_tag(model, node.input[0], {**tag, "perm": [perm[j] for j in outer]})
        return model, False
