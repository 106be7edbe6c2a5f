"""The lowering steps, from a Brevitas QONNX export to specialized, folded FINN hardware layers.

Each step is a function ``(model, ctx) -> model``; :mod:`hw_gen.lowering.pipeline` runs them
in order, saves each result and lets a build stop after or resume from any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.fold_constants import FoldConstants
from qonnx.transformation.general import (
    GiveReadableTensorNames,
    GiveUniqueNodeNames,
    RemoveStaticGraphInputs,
    RemoveUnusedTensors,
)
from qonnx.transformation.infer_data_layouts import InferDataLayouts
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul
from qonnx.util.cleanup import cleanup_model

from hw_gen.errors import HwGenError, UnmappedNodesError
from hw_gen.folding import apply_folding, is_hw
from hw_gen.lowering.quant_widths import check_quant_widths
from hw_gen.lowering import (
    activation_tags,
    attention,
    bipolar,
    class_bias,
    interface,
    layout,
    mbu,
    padding,
    resize,
    rounding,
    software_ops,
)
from hw_gen.lowering.joins import MoveScalesPastJoins
from hw_gen.lowering.xnor import ConvertBipolarToXnor, InferXnorMatrixVectorActivation
from hw_gen.lowering.widths import check_datatypes, minimize_widths


@dataclass
class LoweringContext:
    """What the steps share: options, and facts a step records for later ones and reports."""

    fpga_part: str
    outputs: str = "both"  # "labels", "logits" or "both"
    clk_ns: float = 10.0
    target_fps: float | None = None
    folding_config: str | None = None
    board: str | None = None  # fold to this board's resources (hw_gen.hwmodel.fold_search)
    fit: float = 0.8
    strict_fps: bool = False
    facts: dict[str, Any] = field(default_factory=dict)


def qonnx_cleanup(model: ModelWrapper, ctx: LoweringContext) -> ModelWrapper:
    check_quant_widths(model)
    model = cleanup_model(model)
    vector_zero_points(model)
    return model.transform(InferShapes())


def vector_zero_points(model: ModelWrapper) -> None:
    """Brevitas exports a quantized bias with a 0-d zero point, on which qonnx's
    ``ExtractBiasFromConv`` (inside ``ConvertQONNXtoFINN``) fails; it becomes shape (1,)."""
    for node in model.get_nodes_by_op_type("Quant"):
        zero_point = model.get_initializer(node.input[2])
        if zero_point is not None and zero_point.shape == ():
            model.set_initializer(node.input[2], zero_point.reshape(1))


def input_interface(model: ModelWrapper, ctx: LoweringContext) -> ModelWrapper:
    model, info = interface.make_uint8_input(model)
    ctx.facts["input"] = {"kind": info.kind, "scale": info.scale}
    return model


def qonnx_to_finn(model: ModelWrapper, ctx: LoweringContext) -> ModelWrapper:
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN

    model = model.transform(rounding.RecordHalfEvenQuantizers())
    model = model.transform(activation_tags.RecordActivationQuants())
    model = model.transform(bipolar.UnitScaleBipolarQuant())
    model = model.transform(ConvertQONNXtoFINN())
    model = model.transform(activation_tags.TagActivationTensors())
    return model.transform(rounding.TagHalfEvenThresholds())


def tidy(model: ModelWrapper, ctx: LoweringContext) -> ModelWrapper:
    from finn.transformation.qonnx.give_unique_node_names_recursive import (
        GiveUniqueNodeNamesRecursive,
    )

    for t in (InferShapes(), FoldConstants(), GiveUniqueNodeNamesRecursive(),
              GiveReadableTensorNames(), InferDataTypes(), RemoveStaticGraphInputs()):
        model = model.transform(t)
    return model


def multi_branch_upsampling(model: ModelWrapper, ctx: LoweringContext) -> ModelWrapper:
    lowering = mbu.LowerMultiBranchUpsample()
    model = model.transform(lowering)
    ctx.facts["multi_branch_upsampling"] = lowering.lowered
    return model


def upsampling(model: ModelWrapper, ctx: LoweringContext) -> ModelWrapper:
    model = model.transform(resize.MoveAffinePastBilinearResize())
    return model.transform(resize.LowerBilinearResize())


def attention_layers(model: ModelWrapper, ctx: LoweringContext) -> ModelWrapper:
    return attention.lower_attention(model)


def binary_padding(model: ModelWrapper, ctx: LoweringContext) -> ModelWrapper:
    from finn.transformation.streamline.absorb import AbsorbScalarBiasIntoMultiThreshold

    # bring scales next to the pads (activation offsets first: copies would hide them)
    model = model.transform(AbsorbScalarBiasIntoMultiThreshold())
    model = model.transform(MoveScalesPastJoins())
    model = model.transform(padding.MoveScalarMulPastPad())
    return model.transform(padding.ZeroPadToInt2())


def _layout_cleanup(model: ModelWrapper) -> ModelWrapper:
    """Make resizes NHWC and move transposes past joins and forks until none can move."""
    import finn.transformation.streamline.absorb as absorb
    import finn.transformation.streamline.reorder as reorder

    passes = [
        layout.MakeForkedNHWC(),
        reorder.MakeMaxPoolNHWC(),
        reorder.MakeScaleResizeNHWC(),
        absorb.AbsorbTransposeIntoMultiThreshold(),
        activation_tags.TagTransposeInputs(),
        layout.AbsorbTransposeIntoResize(),
        reorder.MoveTransposePastJoinAdd(),
        reorder.MoveTransposePastJoinConcat(),
        reorder.MoveTransposePastFork(),
        absorb.AbsorbConsecutiveTransposes(),
        padding.FusePadIntoIm2Col(),
    ]
    for _ in range(8):
        before = [(n.op_type, tuple(n.input)) for n in model.graph.node]
        for t in passes:
            model = model.transform(t)
        if [(n.op_type, tuple(n.input)) for n in model.graph.node] == before:
            break
    return model


def streamline(model: ModelWrapper, ctx: LoweringContext) -> ModelWrapper:
    import finn.transformation.streamline.absorb as absorb
    from finn.transformation.streamline import Streamline

    from hw_gen.lowering.skip_noops import apply_skipping_noops

    model = model.transform(absorb.AbsorbScalarBiasIntoMultiThreshold())
    model = model.transform(MoveScalesPastJoins())
    model = apply_skipping_noops(model, Streamline())
    model = model.transform(attention.AbsorbOutputSign())
    model = model.transform(LowerConvsToMatMul())
    model = _layout_cleanup(model)
    model = model.transform(ConvertBipolarToXnor())
    model = model.transform(padding.MapBinaryPadValues())
    model = model.transform(MoveScalesPastJoins())
    model = apply_skipping_noops(model, Streamline())
    model = _layout_cleanup(model)
    ties = rounding.ApplyHalfEvenTies()
    model = model.transform(ties)
    ctx.facts["near_ties"] = ties.near_ties
    model = attention.fuse_rebinarization(model)
    model = model.transform(InferDataLayouts())
    return model.transform(RemoveUnusedTensors())


def output_interface(model: ModelWrapper, ctx: LoweringContext) -> ModelWrapper:
    """Name the logits output and add a labels output (TopK over the integer scores) where
    the float tail is monotonic."""
    if class_bias.move_bias_before_scale(model):
        model = model.transform(InferShapes()).transform(InferDataTypes())
        ctx.facts["class_bias_before_scale"] = True
    graph = model.graph
    out = graph.output[0]
    # the integer scores: walk back from the output over the float tail
    tensor = out.name
    producer = model.find_producer(tensor)
    while (producer is not None and producer.op_type in ("Mul", "Add", "Transpose", "Reshape")
           and not class_bias.integer_bias_add(model, producer)):
        tensor = producer.input[0]
        producer = model.find_producer(tensor)
    scores = tensor
    ctx.facts["scores_tensor"] = scores
    want_labels = ctx.outputs in ("labels", "both")
    labels_ok = model.get_tensor_datatype(scores).is_integer() and interface.tail_is_monotonic(
        model, scores
    )
    ctx.facts["labels_in_hardware"] = bool(want_labels and labels_ok)
    if want_labels and not labels_ok:
        ctx.facts["labels_note"] = (
            "the scores are scaled per class (or not integer), so labels are taken from "
            "the float logits in software"
        )
    if want_labels and labels_ok:
        shape = model.get_tensor_shape(scores)
        k = model.make_new_valueinfo_name()
        model.set_initializer(k, np.asarray([1], dtype=np.int64))
        values = model.make_new_valueinfo_name()
        label_shape = list(shape[:-1]) + [1]
        graph.value_info.append(helper.make_tensor_value_info(values, TensorProto.FLOAT, label_shape))
        graph.output.append(
            helper.make_tensor_value_info(interface.LABELS_NAME, TensorProto.INT64, label_shape)
        )
        graph.node.append(
            helper.make_node("TopK", [scores, k], [values, interface.LABELS_NAME], axis=-1)
        )
        model.set_tensor_datatype(interface.LABELS_NAME, DataType[f"UINT{max(1, int(np.ceil(np.log2(shape[-1]))))}"])
    if ctx.outputs == "labels" and labels_ok:
        graph.output.remove(out)
    model = model.transform(InferShapes())
    return model


def to_hw(model: ModelWrapper, ctx: LoweringContext) -> ModelWrapper:
    from finn.transformation.fpgadataflow.convert_to_hw import (
        concat,
        conv_inp_gen,
        duplicate_streams,
        fm_padding,
        label_select,
        pool,
        quantized_matrix_vector_activation as qmva,
        upsample,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.elementwise_binary_operation import (
        InferElementwiseBinaryOperation,
    )

    import finn.transformation.streamline.absorb as absorb
    from finn.transformation.move_reshape import RemoveCNVtoFCFlatten

    model = _keep_float_thresholds_in_software(model, hide=True)
    for t in (
        InferXnorMatrixVectorActivation(),
        qmva.InferQuantizedMatrixVectorActivation(),
        label_select.InferLabelSelectLayer(),
        bipolar.InferThresholdingLayers(),
        fm_padding.InferFMPadding(),
        pool.InferPool(),
        conv_inp_gen.InferConvInpGen(),
        RemoveCNVtoFCFlatten(),
        concat.InferConcatLayer(),
        upsample.InferUpsample(),
    ):
        model = model.transform(t)
    model = model.transform(InferElementwiseBinaryOperation(_all_integer))
    model = _keep_float_thresholds_in_software(model, hide=False)
    model = model.transform(duplicate_streams.InferDuplicateStreamsLayer())
    model = model.transform(absorb.AbsorbConsecutiveTransposes())
    for t in (GiveUniqueNodeNames(), InferDataLayouts(), InferDataTypes(), InferShapes()):
        model = model.transform(t)
    _check_mapped(model)
    return model


def widths(model: ModelWrapper, ctx: LoweringContext) -> ModelWrapper:
    model = minimize_widths(model)
    ctx.facts["layers_type_checked"] = check_datatypes(model)
    return model


def specialize(model: ModelWrapper, ctx: LoweringContext) -> ModelWrapper:
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

    model = model.transform(SpecializeLayers(ctx.fpga_part))
    for t in (GiveUniqueNodeNames(), InferShapes(), InferDataTypes()):
        model = model.transform(t)
    model = minimize_widths(model)
    ctx.facts["layers_type_checked"] = check_datatypes(model)
    return model


def fold(model: ModelWrapper, ctx: LoweringContext) -> ModelWrapper:
    return apply_folding(model, ctx.target_fps, ctx.clk_ns, ctx.folding_config, ctx.board,
                         ctx.fit, ctx.strict_fps, ctx.facts)


def _keep_float_thresholds_in_software(model: ModelWrapper, hide: bool) -> ModelWrapper:
    """A threshold on a float tensor (an input quantizer other than UINT8 pixels, or one after
    a float op) is no hardware layer: hide it from FINN's conversions, then restore it."""
    for node in model.graph.node:
        if hide and node.op_type == "MultiThreshold":
            if not model.get_tensor_datatype(node.input[0]).is_integer():
                node.op_type, node.domain = "SoftwareMultiThreshold", software_ops.DOMAIN
        elif not hide and node.op_type == "SoftwareMultiThreshold":
            node.op_type, node.domain = "MultiThreshold", "qonnx.custom_op.general"
    return model


def _all_integer(model: ModelWrapper, node) -> bool:
    """Only integer elementwise operations become hardware; float scaling stays in software."""
    tensors = list(node.input) + list(node.output)
    return all(model.get_tensor_datatype(t).is_integer() for t in tensors)


def _check_mapped(model: ModelWrapper) -> None:
    """Every node on a path from one hardware layer to another must be a hardware layer."""
    nodes = list(model.graph.node)
    hw = [n for n in nodes if is_hw(n)]
    if not hw:
        raise UnmappedNodesError([(n.name, n.op_type) for n in nodes], "to_hw")
    downstream = _reachable(hw, lambda n: [c for t in n.output
                                           for c in model.find_consumers(t) or []])
    upstream = _reachable(hw, lambda n: [p for t in n.input
                                         if (p := model.find_producer(t)) is not None])
    stray = [(n.name, n.op_type) for n in nodes
             if not is_hw(n) and n.name in downstream and n.name in upstream]
    if stray:
        raise UnmappedNodesError(stray, "to_hw")


def _reachable(start: list, neighbours: Callable) -> set[str]:
    """Names of the nodes reached from ``start`` (not counting ``start`` itself)."""
    seen: set[str] = set()
    todo = [m for n in start for m in neighbours(n)]
    while todo:
        node = todo.pop()
        if node.name not in seen:
            seen.add(node.name)
            todo += neighbours(node)
    return seen


StepFn = Callable[[ModelWrapper, LoweringContext], ModelWrapper]
