"""The multi-branch upsampling block (``brevitas_models.mbu``) onto our MultiBranchUpsample layer.

Runs before the ``upsampling`` step (which would otherwise take the block's Resize). The
pattern, in the graph FINN's QONNX conversion leaves (NCHW):

    B = sign(...)                     a bipolar MultiThreshold
    per branch k:  B -> [Mul(s)] -> Pad(-1 or -s, d_k) -> [Mul(s)] -> Conv(3x3, dilation d_k,
                   +-1 weights, stride 1, no bias, no conv padding) -> Mul(gamma_k)* (none: 1)
    Add(...) of the K branches -> Resize(x2, nearest or bilinear half-pixel)

Every branch reads the same sign ``B`` with the same scale ``s``; its -1 padding is checked
against the scale at the pad. The gains ``gamma_k[c]`` must be fixed point: ``G / 2^F`` with
one ``F <= 24`` for all branches, ``G`` a nonnegative integer of at most ``MAX_GATE_BITS``
bits (the least such ``F`` is taken). The block becomes

    B -> Transpose(NHWC) -> MultiBranchUpsample(weights, G) -> Transpose(NCHW) -> Mul(s / (2^F u))

with ``u`` = 16 for bilinear, 1 for nearest: exact, since the layer computes ``U = 2^F u / s``
times the block's output. Streamlining folds the ``Mul`` with the batch norm and sign that follow
into thresholds. Those thresholds need a positive per-channel scale: for a channel whose batch
norm (or per-channel ``Mul``) right after the Resize is negative, the pass negates that
channel's weights in every branch (``U -> -U``) and the batch norm's gamma and mean (or the
``Mul``), which leaves the function unchanged.

A Resize fed (through Adds and constant Muls) only by convolutions whose inputs come from Pad
nodes is taken as such a block (a user's zero-padded conv before a Resize is left to the other
steps); anything in it that does not fit is refused with one line naming the node and what is
wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from onnx import NodeProto, TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from hw_gen.errors import HwGenError
from hw_gen.layers.mbu import gate_datatype
from hw_gen.lowering.graph import attr, is_positive_scalar_mul, node_label, pad_amounts
from hw_gen.lowering.resize import HALF_PIXEL, resize_scales
from sim.kernels.mbu import FACTOR, MAX_GATE_BITS
from sim.kernels.upsample import bilinear_gain

# float32 gains G / 2^F are exact for G < 2^24
MAX_FRAC_BITS = 24
LAYER_DOMAIN = "finn.custom_op.fpgadataflow"


@dataclass
class Branch:
    conv: NodeProto
    dilation: int
    weights: np.ndarray  # (Cout, Cin, 3, 3), -1/+1
    gain: np.ndarray  # (Cout,) float64
    source: str  # the bipolar tensor the branch reads
    scale: float  # the branch input is scale * source
    nodes: list[NodeProto] = field(default_factory=list)  # input-side Muls and Pads


@dataclass
class Block:
    resize: NodeProto
    mode: str
    branches: list[Branch]
    sum_nodes: list[NodeProto]  # Adds and gain Muls


def _fail(node: NodeProto, message: str) -> HwGenError:
    return HwGenError(f"{node_label(node)}: {message} (multi-branch upsampling block)")


def _single_consumer(model: ModelWrapper, node: NodeProto) -> None:
    if len(model.find_consumers(node.output[0]) or []) != 1:
        raise _fail(node, "its output is also used outside the block")


def _branch_ends(model: ModelWrapper, tensor: str) -> list[tuple[NodeProto, list[NodeProto]]] | None:
    """The convs whose outputs are summed into ``tensor`` through Adds and constant Muls, each
    with the Muls after it; None if anything else contributes."""
    producer = model.find_producer(tensor)
    if producer is None:
        return None
    if producer.op_type == "Conv":
        return [(producer, [])]
    if producer.op_type == "Mul" and model.get_initializer(producer.input[1]) is not None:
        inner = _branch_ends(model, producer.input[0])
        if inner is None or len(inner) != 1:
            return None
        return [(inner[0][0], inner[0][1] + [producer])]
    if producer.op_type == "Add":
        if any(model.get_initializer(t) is not None for t in producer.input):
            return None
        found = []
        for t in producer.input:
            inner = _branch_ends(model, t)
            if inner is None:
                return None
            found += inner
        return found
    return None


def _gain(model: ModelWrapper, muls: list[NodeProto], channels: int) -> np.ndarray:
    gain = np.ones(channels, dtype=np.float64)
    for mul in muls:
        value = np.asarray(model.get_initializer(mul.input[1]), dtype=np.float64)
        if value.size == 1:
            gain = gain * value.reshape(())
        elif value.shape in ((1, channels, 1, 1), (channels, 1, 1)):
            gain = gain * value.reshape(-1)
        else:
            raise _fail(mul, f"multiplies by a constant of shape {value.shape}; a branch gain is a "
                             "scalar or one value per output channel")
    return gain


def _branch_input(model: ModelWrapper, conv: NodeProto, dilation: int) -> tuple[str, float, list]:
    """Walk from the conv's input back to the bipolar sign: scalar Muls and exactly one -1 Pad
    by ``dilation``. Returns the sign's output, the scale at the conv and the walked nodes."""
    walked = []
    tensor = conv.input[0]
    while True:
        producer = model.find_producer(tensor)
        if producer is None:
            raise _fail(conv, "its input is not a binary activation")
        if producer.op_type == "MultiThreshold" and attr(producer, "out_dtype") == "BIPOLAR":
            break
        if is_positive_scalar_mul(model, producer) or producer.op_type == "Pad":
            walked.append(producer)
            tensor = producer.input[0]
            continue
        raise _fail(conv, f"its input comes from {node_label(producer)}, not from a binary "
                          "activation through scalar Muls and a -1 Pad")
    source, scale, pads = tensor, 1.0, []
    for node in reversed(walked):
        if node.op_type == "Mul":
            scale *= float(model.get_initializer(node.input[1]).reshape(()))
            continue
        amounts = pad_amounts(model, node)
        if amounts is None:
            raise _fail(node, "only constant padding of H and W is supported")
        sides, value = amounts
        if sides != [dilation] * 4:
            raise _fail(node, f"pads {sides}, but the conv after it has dilation {dilation} "
                              f"(needs {[dilation] * 4})")
        if np.float32(value) != np.float32(-scale):
            raise _fail(node, f"pads the binary activation with {value / scale:g} (in units of its "
                              "scale); the block pads with -1")
        pads.append(node)
    if len(pads) != 1:
        raise _fail(conv, f"its input has {len(pads)} Pad nodes; a branch pads once, with -1")
    return source, scale, walked


def _branch(model: ModelWrapper, conv: NodeProto, muls: list[NodeProto]) -> Branch:
    if len(conv.input) > 2 and conv.input[2]:
        raise _fail(conv, "has a bias; the block's convs have none")
    weights = model.get_initializer(conv.input[1])
    if weights is None:
        raise _fail(conv, "weights are not a constant")
    weights = np.asarray(weights, dtype=np.float64)
    checks = {
        "kernel_shape": (list(attr(conv, "kernel_shape", weights.shape[2:])), [3, 3]),
        "strides": (list(attr(conv, "strides", [1, 1])), [1, 1]),
        "group": (attr(conv, "group", 1), 1),
    }
    for name, (got, want) in checks.items():
        if got != want:
            raise _fail(conv, f"{name}={got}; the block's convs have {name}={want}")
    if any(attr(conv, "pads", [0, 0, 0, 0])):
        raise _fail(conv, f"pads={list(attr(conv, 'pads'))} with zeros; the block pads its binary "
                          "input with -1 (an explicit Pad)")
    dilations = list(attr(conv, "dilations", [1, 1]))
    if dilations[0] != dilations[1]:
        raise _fail(conv, f"dilations={dilations}; the block uses equal dilations in H and W")
    if not np.isin(weights, (-1.0, 1.0)).all():
        raise _fail(conv, "weights are not all -1/+1 (the block's convs have unit-scale binary "
                          "weights)")
    for node in [conv] + muls:
        _single_consumer(model, node)
    source, scale, walked = _branch_input(model, conv, int(dilations[0]))
    gain = _gain(model, muls, weights.shape[0])
    return Branch(conv, int(dilations[0]), weights, gain, source, scale, walked)


def _mode(model: ModelWrapper, resize: NodeProto) -> str:
    scales = resize_scales(model, resize)
    if scales is None or scales.tolist() != [1.0, 1.0, float(FACTOR), float(FACTOR)]:
        got = None if scales is None else scales.tolist()
        raise _fail(resize, f"scales {got}; the block upsamples x{FACTOR} ([1, 1, 2, 2])")
    mode = attr(resize, "mode", "nearest")
    coords = attr(resize, "coordinate_transformation_mode", "half_pixel")
    if mode == "linear" and coords in HALF_PIXEL:
        return "bilinear"
    if mode == "nearest" and coords == "asymmetric" and attr(resize, "nearest_mode",
                                                             "round_prefer_floor") == "floor":
        return "nearest"
    raise _fail(resize, f"mode {mode} with coordinates {coords}; the block upsamples bilinear "
                        "(align_corners=False) or nearest (torch's)")


def _padded_explicitly(model: ModelWrapper, conv: NodeProto) -> bool:
    """Whether the conv's input comes from a Pad node through scalar Muls (our models' -1
    padding; a user's conv pads through its ``pads`` attribute)."""
    producer = model.find_producer(conv.input[0])
    while producer is not None and is_positive_scalar_mul(model, producer):
        producer = model.find_producer(producer.input[0])
    return producer is not None and producer.op_type == "Pad"


def find_block(model: ModelWrapper, resize: NodeProto) -> Block | None:
    """The block ending in ``resize``; None if the Resize is not fed by convolutions whose
    inputs are padded by Pad nodes (anything else is left to the other steps)."""
    if resize.op_type != "Resize":
        return None
    ends = _branch_ends(model, resize.input[0])
    if ends is None or not all(_padded_explicitly(model, conv) for conv, _ in ends):
        return None
    mode = _mode(model, resize)
    branches = [_branch(model, conv, muls) for conv, muls in ends]
    first = branches[0]
    for b in branches[1:]:
        if b.source != first.source:
            raise _fail(b.conv, f"reads {b.source}, another branch reads {first.source}; all "
                                "branches read the same binary activation")
        if np.float32(b.scale) != np.float32(first.scale):
            raise _fail(b.conv, f"its input has the scale {b.scale:g}, another branch's "
                                f"{first.scale:g}")
        if b.weights.shape[:2] != first.weights.shape[:2]:
            raise _fail(b.conv, f"weights {b.weights.shape}, another branch's {first.weights.shape}")
    sum_nodes = []
    tensor_nodes = [model.find_producer(resize.input[0])]
    while tensor_nodes:
        node = tensor_nodes.pop()
        if node.op_type == "Conv":
            continue
        _single_consumer(model, node)
        sum_nodes.append(node)
        tensor_nodes += [model.find_producer(t) for t in node.input
                         if model.get_initializer(t) is None]
    return Block(resize, mode, branches, sum_nodes)


def fixed_point_gains(block: Block) -> tuple[np.ndarray, int]:
    """The integer gates ``G`` (K, Cout) and ``F`` with gains ``G / 2^F``, least ``F``."""
    gains = np.stack([b.gain for b in block.branches])
    for k, b in enumerate(block.branches):
        if (b.gain < 0).any():
            c = int(np.argmax(b.gain < 0))
            raise _fail(b.conv, f"gate of channel {c} is {b.gain[c]:g}; the block's gates are "
                                "nonnegative fixed point")
    for frac in range(MAX_FRAC_BITS + 1):
        scaled = gains * 2.0**frac
        if np.array_equal(scaled, np.round(scaled)):
            break
    else:
        k, c = np.argwhere(gains * 2.0**MAX_FRAC_BITS != np.round(gains * 2.0**MAX_FRAC_BITS))[0]
        raise _fail(block.branches[k].conv, f"gate {gains[k, c]:.9g} of channel {c} is not a "
                                            f"fixed-point value G / 2^F with F <= {MAX_FRAC_BITS}")
    g = np.round(scaled).astype(np.int64)
    if g.max(initial=0) >= 2**MAX_GATE_BITS:
        k, c = np.unravel_index(int(np.argmax(g)), g.shape)
        raise _fail(block.branches[k].conv, f"gate G={int(g[k, c])} / 2^{frac} of channel {c} is "
                                            f"out of the fixed-point range UINT{MAX_GATE_BITS}")
    return g, frac


def _flip_negative_channels(model: ModelWrapper, block: Block, weights: np.ndarray) -> int:
    """Negate the channels whose batch norm (or per-channel Mul) after the Resize is negative,
    in the weights and in that node; returns how many channels were flipped."""
    consumers = model.find_consumers(block.resize.output[0]) or []
    if len(consumers) != 1:
        return 0
    node = consumers[0]
    cout = weights.shape[1]
    if node.op_type == "BatchNormalization":
        gamma, _, mean, var = (np.asarray(model.get_initializer(t), dtype=np.float32)
                               for t in node.input[1:5])
        flip = gamma / np.sqrt(var + np.float32(attr(node, "epsilon", 1e-5))) < 0
        if flip.any():
            model.set_initializer(node.input[1], np.where(flip, -gamma, gamma))
            model.set_initializer(node.input[3], np.where(flip, -mean, mean))
    elif node.op_type == "Mul" and model.get_initializer(node.input[1]) is not None:
        value = np.asarray(model.get_initializer(node.input[1]), dtype=np.float32)
        if value.size != cout:
            return 0
        flip = value.reshape(-1) < 0
        if flip.any():
            model.set_initializer(node.input[1], np.where(flip.reshape(value.shape), -value, value))
    else:
        return 0
    weights[:, flip] *= -1
    return int(flip.sum())


class LowerMultiBranchUpsample(Transformation):
    """Every multi-branch upsampling block becomes a MultiBranchUpsample layer and a Mul."""

    def __init__(self) -> None:
        super().__init__()
        self.lowered: list[dict] = []

    def apply(self, model: ModelWrapper):
        for index, resize in enumerate(model.graph.node):
            block = find_block(model, resize)
            if block is None:
                continue
            self._replace(model, block, index)
            model = model.transform(InferShapes())
            return model.transform(InferDataTypes()), True
        return model, False

    def _replace(self, model: ModelWrapper, block: Block, index: int) -> None:
        gains, frac = fixed_point_gains(block)
        weights = np.stack([b.weights for b in block.branches])
        flipped = _flip_negative_channels(model, block, weights)
        first = block.branches[0]
        n, cin, h, w = model.get_tensor_shape(first.source)
        cout = weights.shape[1]
        dilations = [b.dilation for b in block.branches]
        up_gain = bilinear_gain(FACTOR) if block.mode == "bilinear" else 1
        gdt = gate_datatype(int(gains.max(initial=0)))
        base = (block.resize.name or f"Resize_{index}").replace("/", "_").strip("_")
        name = f"MultiBranchUpsample_{base}"
        x_nhwc, y_nhwc, y_nchw, w_name, g_name, scale_name = (
            model.make_new_valueinfo_name() for _ in range(6))
        ho, wo = h * FACTOR, w * FACTOR
        for tensor, shape in ((x_nhwc, [n, h, w, cin]), (y_nhwc, [n, ho, wo, cout]),
                              (y_nchw, [n, cout, ho, wo])):
            model.graph.value_info.append(
                helper.make_tensor_value_info(tensor, TensorProto.FLOAT, shape))
        model.set_initializer(w_name, weights.astype(np.float32))
        model.set_initializer(g_name, gains.astype(np.float32))
        model.set_tensor_datatype(w_name, DataType["BIPOLAR"])
        model.set_tensor_datatype(g_name, gdt)
        scale = np.float32(first.scale) / np.float32(2.0**frac * up_gain)
        model.set_initializer(scale_name, np.asarray(scale, dtype=np.float32))
        layer = helper.make_node(
            "MultiBranchUpsample", [x_nhwc, w_name, g_name], [y_nhwc], domain=LAYER_DOMAIN,
            backend="fpgadataflow", name=name, IFMChannels=cin, OFMChannels=cout, IFMDim=[h, w],
            Dilations=dilations, PE=1, SIMD=1, Mode=block.mode, inputDataType="BIPOLAR",
            gateDataType=gdt.name, outputDataType="INT32", numInputVectors=n,
        )
        new_nodes = [
            helper.make_node("Transpose", [first.source], [x_nhwc], perm=[0, 2, 3, 1]),
            layer,
            helper.make_node("Transpose", [y_nhwc], [y_nchw], perm=[0, 3, 1, 2]),
            helper.make_node("Mul", [y_nchw, scale_name], [block.resize.output[0]]),
        ]
        graph = model.graph
        dead = [block.resize] + block.sum_nodes + [b.conv for b in block.branches]
        for node in dead:
            graph.node.remove(node)
        for offset, node in enumerate(new_nodes):
            graph.node.insert(index + offset, node)
        _remove_unused(model, [n for b in block.branches for n in b.nodes])
        from qonnx.custom_op.registry import getCustomOp

        inst = getCustomOp(layer)
        inst.set_nodeattr("outputDataType", inst.derive_output_datatype().name)
        model.set_tensor_datatype(y_nhwc, inst.get_output_datatype())
        model.set_tensor_layout(x_nhwc, ["N", "H", "W", "C"])
        model.set_tensor_layout(y_nhwc, ["N", "H", "W", "C"])
        self.lowered.append({"node": name, "branches": len(dilations), "dilations": dilations,
                             "mode": block.mode, "frac_bits": frac, "gate_type": gdt.name,
                             "flipped_channels": flipped})


def _remove_unused(model: ModelWrapper, candidates: list[NodeProto]) -> None:
    """Remove the candidate nodes whose outputs nothing reads any more (repeatedly)."""
    outputs = {o.name for o in model.graph.output}
    removed = True
    while removed:
        removed = False
        for node in list(candidates):
            if node in model.graph.node and not model.find_consumers(node.output[0]) and \
                    node.output[0] not in outputs:
                model.graph.node.remove(node)
                candidates.remove(node)
                removed = True
