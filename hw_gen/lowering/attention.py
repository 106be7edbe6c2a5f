"""The binary attention block onto our AxialAttention layer.

The torch block (``brevitas_models.attention``) exports its activation-by-activation part as
one node, ``BinaryAxialAttention`` in this module's domain (so qonnx finds the op below for
shapes, data types and execution): inputs ``Q``, ``K``, ``V``, ``X`` in NCHW, output the
integer ``I``. Its projections are ordinary 1x1 binary convs (FINN's matrix-vector units)
and what follows it (``Mul(2^-F)``, batch norm, sign) is ordinary too.

:class:`LowerAxialAttention` replaces the node by the layer, NHWC between transposes that the
layout clean-up removes. The layer reads only the signs of Q, K and X, so positive scales in
front of them (a ``Mul`` after a sign) are bypassed; V must be integer (the block quantizes it
with the fixed scale 1). The layer's output is the integer ``I``; the scale after it and the
batch norm fold with the sign into one threshold per channel in FINN's streamlining.

A batch norm with a negative scale leaves a ``Mul(-1)`` on some channels in front of the
thresholds, which FINN absorbs only into a matrix-vector unit's weights:
:class:`AbsorbOutputSign` moves it into the layer (its ``OutputSign``), in the streamline step
right after FINN's streamlining creates it (before the layout clean-up, which it would block).

At the end of that step, :func:`fuse_rebinarization`:

* :class:`XnorEncodeSigns`: the XNOR conversion gives a sign that also feeds XNOR units a
  BINARY twin, and the BIPOLAR original would become a second Thresholding layer with the same
  thresholds; the layer reads the twin instead (``binaryInputs``: 1 for +1, 0 for -1, the bits
  a BIPOLAR stream carries anyway), or a sign only our layers read is retyped.
* :class:`AbsorbRebinarization` takes the threshold after the layer into it; the layer decides
  ``I >= T`` as ``n2 >= (T - P x) * den2`` without dividing (the comparison the hardware
  makes). Where the threshold is not a single one per channel into BINARY/BIPOLAR, the layer
  outputs ``s I`` and FINN's Thresholding layer follows.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.base import CustomOp
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from hw_gen.errors import HwGenError
from hw_gen.layers.upsample import smallest_int_type
from hw_gen.lowering import activation_tags
from hw_gen.lowering.graph import (
    attr,
    is_positive_scalar_mul,
    node_label,
    set_attr,
    threshold_matrix,
)
from sim.kernels.attention import AxialSpec, axial_attention, value_bounds

DOMAIN = __name__
OP_TYPE = "BinaryAxialAttention"
LAYER_DOMAIN = "finn.custom_op.fpgadataflow"
NHWC, NCHW = [0, 2, 3, 1], [0, 3, 1, 2]


def node_spec(node, q_shape, v_shape) -> AxialSpec:
    """The arithmetic of an exported BinaryAxialAttention node whose Q and V have these NCHW
    shapes (checked, named on error)."""
    try:
        vmin, vmax = value_bounds(attr(node, "value_dtype"))
        spec = AxialSpec(
            channels=int(v_shape[1]), proj_channels=int(q_shape[1]), height=int(v_shape[2]),
            width=int(v_shape[3]), value_min=vmin, value_max=vmax,
            frac_bits=int(attr(node, "frac_bits")), lut=tuple(attr(node, "lut")),
            gains=tuple(attr(node, "gains")),
        )
        spec.check()
    except (ValueError, TypeError) as exc:
        raise HwGenError(f"{node_label(node)}: {exc}") from exc
    return spec


def model_spec(model: ModelWrapper, node) -> AxialSpec:
    return node_spec(node, model.get_tensor_shape(node.input[0]),
                     model.get_tensor_shape(node.input[2]))


class BinaryAxialAttention(CustomOp):
    """The exported node (NCHW); executes through the sim kernel on the signs of Q, K, X."""

    def get_nodeattr_types(self):
        return {
            "frac_bits": ("i", True, 8),
            "lut": ("ints", True, []),
            "gains": ("ints", True, []),
            "value_dtype": ("s", True, "BIPOLAR"),
        }

    def make_shape_compatible_op(self, model):
        node = self.onnx_node
        return helper.make_node("Identity", [node.input[2]], [node.output[0]])

    def infer_node_datatype(self, model):
        spec = model_spec(model, self.onnx_node)
        model.set_tensor_datatype(self.onnx_node.output[0], smallest_int_type(*spec.output_range))

    def execute_node(self, context, graph):
        node = self.onnx_node
        q, k, v, x = (np.asarray(context[t], dtype=np.float64) for t in node.input)
        spec = node_spec(node, q.shape, v.shape)
        sign = lambda a: np.where(a >= 0, 1, -1).transpose(NHWC)  # noqa: E731
        out = axial_attention(spec, sign(q), sign(k), np.rint(v).astype(np.int64).transpose(NHWC),
                              sign(x))
        context[node.output[0]] = out.transpose(NCHW).astype(np.float32)

    def verify_node(self):
        return []


def _sign_tensor(model: ModelWrapper, node, index: int) -> str:
    """The bipolar sign behind input ``index``, past positive scalar Muls."""
    tensor = node.input[index]
    producer = model.find_producer(tensor)
    while producer is not None and is_positive_scalar_mul(model, producer):
        tensor = producer.input[0]
        producer = model.find_producer(tensor)
    if producer is None or model.get_tensor_datatype(tensor) != DataType["BIPOLAR"]:
        raise HwGenError(
            f"{node_label(node)}: input {index} ({'QKVX'[index]}) must be a sign activation, "
            "at most scaled by a positive constant"
        )
    return tensor


def _remove_dead_scales(model: ModelWrapper, tensor: str) -> None:
    """Remove the Muls that only fed a bypassed input (now read by nothing)."""
    producer = model.find_producer(tensor)
    outputs = {o.name for o in model.graph.output}
    while (producer is not None and is_positive_scalar_mul(model, producer)
           and not model.find_consumers(tensor) and tensor not in outputs):
        model.graph.node.remove(producer)
        tensor = producer.input[0]
        producer = model.find_producer(tensor)


class LowerAxialAttention(Transformation):
    """Each BinaryAxialAttention node becomes the AxialAttention layer (see the module doc)."""

    def apply(self, model: ModelWrapper):
        for index, node in enumerate(model.graph.node):
            if node.op_type != OP_TYPE or node.domain != DOMAIN:
                continue
            spec = model_spec(model, node)
            inputs = [_sign_tensor(model, node, 0), _sign_tensor(model, node, 1), node.input[2],
                      _sign_tensor(model, node, 3)]
            vdt = model.get_tensor_datatype(inputs[2])
            vmin, vmax = value_bounds(attr(node, "value_dtype"))
            if not vdt.is_integer() or vdt.min() < vmin or vdt.max() > vmax:
                raise HwGenError(
                    f"{node_label(node)}: V must be an integer tensor within "
                    f"{attr(node, 'value_dtype')} (the block's fixed-scale quantizer), not "
                    f"{vdt.name}"
                )
            n = model.get_tensor_shape(node.input[2])[0]
            h, w = spec.height, spec.width
            nhwc = []
            new_nodes = []
            for t, c in zip(inputs, (spec.proj_channels, spec.proj_channels, spec.channels,
                                     spec.channels)):
                name = model.make_new_valueinfo_name()
                model.graph.value_info.append(
                    helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, h, w, c]))
                new_nodes.append(helper.make_node("Transpose", [t], [name], perm=NHWC))
                nhwc.append(name)
            y = model.make_new_valueinfo_name()
            model.graph.value_info.append(
                helper.make_tensor_value_info(y, TensorProto.FLOAT, [n, h, w, spec.channels]))
            odt = smallest_int_type(*spec.output_range)
            base = (node.name or f"attention_{index}").replace("/", "_").strip("_")
            new_nodes.append(helper.make_node(
                "AxialAttention", nhwc, [y], domain=LAYER_DOMAIN, backend="fpgadataflow",
                name=f"AxialAttention_{base}", Channels=spec.channels,
                ProjChannels=spec.proj_channels, H=h, W=w, PE=1, SIMD=1,
                FracBits=spec.frac_bits, Lut=list(spec.lut), ResidualGain=list(spec.gains),
                valueDataType=vdt.name, outputDataType=odt.name, numInputVectors=n,
            ))
            new_nodes.append(helper.make_node("Transpose", [y], [node.output[0]], perm=NCHW))
            graph = model.graph
            bypassed = set(node.input) - set(inputs)
            graph.node.remove(node)
            for offset, new in enumerate(new_nodes):
                graph.node.insert(index + offset, new)
            for t in bypassed:
                _remove_dead_scales(model, t)
            for name in nhwc + [y]:
                model.set_tensor_layout(name, ["N", "H", "W", "C"])
            model.set_tensor_datatype(y, odt)
            model = model.transform(InferShapes())
            return model.transform(InferDataTypes()), True
        return model, False


def _single_consumer(model: ModelWrapper, tensor: str):
    consumers = model.find_consumers(tensor) or []
    return consumers[0] if len(consumers) == 1 else None


def _layers(model: ModelWrapper):
    from qonnx.custom_op.registry import getCustomOp

    for node in list(model.graph.node):
        if node.op_type == "AxialAttention" and node.domain == LAYER_DOMAIN:
            yield node, getCustomOp(node)


def _channel_signs(model: ModelWrapper, mul, channels: int, axis: int) -> np.ndarray | None:
    """The per-channel +-1 factors of ``mul`` (channel axis ``axis`` of a 4-D tensor), or None
    if it multiplies by anything else."""
    c = model.get_initializer(mul.input[1])
    if c is None or not np.isin(c, (-1.0, 1.0)).all():
        return None
    if c.size == 1:
        return np.full(channels, int(c.reshape(-1)[0]), dtype=np.int64)
    shape = [1] * 4
    shape[axis] = channels
    if c.size != channels or list(np.shape(c)) not in (shape, [channels]):
        return None
    return c.reshape(-1).astype(np.int64)


class AbsorbOutputSign(Transformation):
    """AxialAttention -> [Transpose to NCHW] -> Mul(+-1 per channel): the Mul moves into the
    layer's ``OutputSign``."""

    def apply(self, model: ModelWrapper):
        for layer, inst in _layers(model):
            if inst.fused:
                continue
            nxt = _single_consumer(model, layer.output[0])
            axis = 3
            if nxt is not None and nxt.op_type == "Transpose" and list(attr(nxt, "perm")) == NCHW:
                axis = 1
                nxt = _single_consumer(model, nxt.output[0])
            if nxt is None or nxt.op_type != "Mul":
                continue
            signs = _channel_signs(model, nxt, inst.get_nodeattr("Channels"), axis)
            if signs is None:
                continue
            old = inst.get_nodeattr("OutputSign") or [1] * len(signs)
            inst.set_nodeattr("OutputSign", [int(a * b) for a, b in zip(old, signs)])
            for consumer in model.find_consumers(nxt.output[0]) or []:
                for i, t in enumerate(consumer.input):
                    if t == nxt.output[0]:
                        consumer.input[i] = nxt.input[0]
            for i, out in enumerate(model.graph.output):
                if out.name == nxt.output[0]:
                    raise HwGenError(f"{node_label(nxt)}: a sign flip at the graph output")
            model.graph.node.remove(nxt)
            odt = inst.derive_output_datatype()
            inst.set_nodeattr("outputDataType", odt.name)
            model.set_tensor_datatype(layer.output[0], odt)
            return model.transform(InferDataTypes()), True
        return model, False


class AbsorbRebinarization(Transformation):
    """AxialAttention (integer output) -> MultiThreshold with one threshold per channel and a
    BINARY or BIPOLAR output, on the same NHWC tensor: the threshold moves into the layer."""

    def apply(self, model: ModelWrapper):
        for layer, inst in _layers(model):
            if inst.fused:
                continue
            mt = _single_consumer(model, layer.output[0])
            if mt is None or mt.op_type != "MultiThreshold":
                continue
            out_dtype = attr(mt, "out_dtype")
            scale, bias = attr(mt, "out_scale", 1.0), attr(mt, "out_bias", 0.0)
            expected = {"BIPOLAR": (2.0, -1.0), "BINARY": (1.0, 0.0)}.get(out_dtype)
            layout = attr(mt, "data_layout", "NCHW")
            thr = threshold_matrix(model, mt)
            channels = inst.get_nodeattr("Channels")
            if expected != (scale, bias) or layout != "NHWC" or thr.shape[1] != 1 or (
                    thr.shape[0] not in (1, channels)):
                continue
            lo, hi = inst.value_range()
            t = np.clip(np.ceil(np.broadcast_to(thr[:, 0], (channels,))), lo, hi + 1)
            inst.set_nodeattr("Thresholds", [int(v) for v in t])
            inst.set_nodeattr("outputDataType", out_dtype)
            layer.output[0] = mt.output[0]
            model.graph.node.remove(mt)
            model.set_tensor_datatype(layer.output[0], DataType[out_dtype])
            return model.transform(InferDataTypes()), True
        return model, False


def _is_sign(node, dtype: str) -> bool:
    scale_bias = {"BIPOLAR": (2.0, -1.0), "BINARY": (1.0, 0.0)}[dtype]
    return (node.op_type == "MultiThreshold" and attr(node, "out_dtype") == dtype
            and (attr(node, "out_scale", 1.0), attr(node, "out_bias", 0.0)) == scale_bias)


def _sign_inputs(inst) -> list[int]:
    from hw_gen.layers.attention import K, Q, V, X

    return [Q, K, X] + ([V] if inst.get_nodeattr("valueDataType") == "BIPOLAR" else [])


class XnorEncodeSigns(Transformation):
    """A BIPOLAR sign that only AxialAttention layers read reaches them XNOR-encoded."""

    def apply(self, model: ModelWrapper):
        readers: dict[str, list] = {}
        for layer, inst in _layers(model):
            for ind in _sign_inputs(inst):
                readers.setdefault(layer.input[ind], []).append((layer, inst, ind))
        for tensor, uses in readers.items():
            sign = model.find_producer(tensor)
            consumers = model.find_consumers(tensor) or []
            if sign is None or not _is_sign(sign, "BIPOLAR") or len(consumers) != len(
                    {id(layer) for layer, _, _ in uses}) or tensor in [o.name for o in model.graph.output]:
                continue
            thresholds = model.get_initializer(sign.input[1])
            twin = next((n for n in model.find_consumers(sign.input[0]) or []
                         if n is not sign and _is_sign(n, "BINARY")
                         and attr(n, "data_layout") == attr(sign, "data_layout")
                         and np.array_equal(model.get_initializer(n.input[1]), thresholds)), None)
            if twin is None:
                set_attr(sign, "out_dtype", "BINARY")
                set_attr(sign, "out_scale", 1.0)
                set_attr(sign, "out_bias", 0.0)
                model.set_tensor_datatype(tensor, DataType["BINARY"])
                encoded = tensor
            else:
                encoded = twin.output[0]
                model.graph.node.remove(sign)
                # the twin carries the activation now (BINARY: its XNOR encoding)
                tag = activation_tags.get_tag(model, tensor)
                if tag is not None and activation_tags.get_tag(model, encoded) is None:
                    activation_tags.set_tag(model, encoded, tag)
            for layer, inst, ind in uses:
                layer.input[ind] = encoded
                inst.set_nodeattr("binaryInputs", sorted(set(inst.get_nodeattr("binaryInputs")) | {ind}))
            return model.transform(InferDataTypes()), True
        return model, False


def fuse_rebinarization(model: ModelWrapper) -> ModelWrapper:
    """XNOR-encoded sign inputs, output signs, then thresholds, into each AxialAttention layer
    (see the module doc)."""
    import finn.transformation.streamline.absorb as absorb

    model = model.transform(XnorEncodeSigns())
    model = model.transform(AbsorbOutputSign())
    model = model.transform(absorb.AbsorbTransposeIntoMultiThreshold())
    model = model.transform(absorb.AbsorbConsecutiveTransposes())
    return model.transform(AbsorbRebinarization())


def lower_attention(model: ModelWrapper) -> ModelWrapper:
    """Every exported BinaryAxialAttention node onto the layer. A multi-bit V is a threshold
    count plus a constant offset at this point: FINN's bias absorption (run again by its
    streamlining) makes it one integer tensor first."""
    if not any(n.op_type == OP_TYPE and n.domain == DOMAIN for n in model.graph.node):
        return model
    import finn.transformation.streamline.absorb as absorb

    model = model.transform(absorb.AbsorbScalarBiasIntoMultiThreshold())
    model = model.transform(InferDataTypes())
    return model.transform(LowerAxialAttention())
