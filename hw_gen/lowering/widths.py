"""Data-type widths of hardware layers: FINN's minimization, our corrections, a static check.

* FINN sizes an XNOR unit's accumulator for the +-1 value range, while its HLS accumulates a
  popcount from 0 to MW (a popcount of 144 wraps to -112 in INT8). :class:`WidenXnorAccumulators`
  widens accumulator (and no-activation output) types to INT{ceil(log2(MW+1))+1}, before the
  thresholds are clipped to the accumulator range.
* MinimizeWeightBitWidth turns +-1 weights of non-XNOR units (the INT2 zero-padding route) into
  INT2; :class:`RestoreBipolarWeights` sets them back to BIPOLAR (half the memory, same values).
* FINN's ElementwiseAdd sizes its output one bit wider than the wider input, which is a bit
  short for two BIPOLAR inputs (-1 + -1 .. 1 + 1 needs INT3, FINN picks INT2, so 2 wraps to
  -2; a residual add that broadcasts a 1x1 map is such a layer). :class:`WidenElementwiseAdd`
  sets the output type from the sum of the input ranges where FINN's is too narrow.
* :func:`check_datatypes` checks every layer's declared types against the values it must hold.
"""

from __future__ import annotations

import math

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.util.basic import calculate_matvec_accumulator_range

from hw_gen.errors import DataTypeCheckError


def _base_op(node) -> str:
    for suffix in ("_hls", "_rtl"):
        if node.op_type.endswith(suffix):
            return node.op_type[: -len(suffix)]
    return node.op_type


def xnor_accumulator_type(mw: int) -> DataType:
    return DataType[f"INT{math.ceil(math.log2(mw + 1)) + 1}"]


class WidenXnorAccumulators(Transformation):
    def apply(self, model: ModelWrapper):
        for node in model.graph.node:
            if _base_op(node) != "MVAU":
                continue
            inst = getCustomOp(node)
            if not inst.get_nodeattr("binaryXnorMode"):
                continue
            need = xnor_accumulator_type(inst.get_nodeattr("MW"))
            acc = DataType[inst.get_nodeattr("accDataType")]
            if acc.bitwidth() < need.bitwidth() or acc.signed() != need.signed():
                inst.set_nodeattr("accDataType", need.name)
                if inst.get_nodeattr("noActivation"):
                    inst.set_nodeattr("outputDataType", need.name)
        return model.transform(InferDataTypes()), False


class ClipXnorThresholds(Transformation):
    """An XNOR unit compares a popcount in [0, MW]: thresholds below 0 always fire and above
    MW + 1 never do, so clipping them there is exact (and FINN requires them nonnegative)."""

    def apply(self, model: ModelWrapper):
        for node in model.graph.node:
            if _base_op(node) != "MVAU" or len(node.input) < 3:
                continue
            inst = getCustomOp(node)
            if not inst.get_nodeattr("binaryXnorMode") or inst.get_nodeattr("noActivation"):
                continue
            t = model.get_initializer(node.input[2])
            clipped = np.clip(t, 0, inst.get_nodeattr("MW") + 1).astype(np.float32)
            model.set_initializer(node.input[2], clipped)
        return model, False


def integer_type_for(low: int, high: int) -> DataType:
    """The narrowest qonnx integer type holding ``low..high``."""
    if low >= 0:
        return DataType[f"UINT{max(1, math.ceil(math.log2(high + 1)))}"]
    bits = 1
    while not (-(2 ** (bits - 1)) <= low and high <= 2 ** (bits - 1) - 1):
        bits += 1
    return DataType[f"INT{max(bits, 2)}"]


class WidenElementwiseAdd(Transformation):
    def apply(self, model: ModelWrapper):
        for node in model.graph.node:
            if _base_op(node) != "ElementwiseAdd":
                continue
            types = [model.get_tensor_datatype(t) for t in node.input[:2]]
            if not all(t.is_integer() for t in types):
                continue
            low = int(types[0].min() + types[1].min())
            high = int(types[0].max() + types[1].max())
            inst = getCustomOp(node)
            out = DataType[inst.get_nodeattr("out_dtype")]
            if out.min() <= low and high <= out.max():
                continue
            need = integer_type_for(low, high)
            inst.set_nodeattr("out_dtype", need.name)
            model.set_tensor_datatype(node.output[0], need)
        return model, False


class RestoreBipolarWeights(Transformation):
    def apply(self, model: ModelWrapper):
        for node in model.graph.node:
            if _base_op(node) != "MVAU":
                continue
            inst = getCustomOp(node)
            if inst.get_nodeattr("binaryXnorMode"):
                continue
            w = model.get_initializer(node.input[1])
            if w is not None and np.isin(w, (-1, 1)).all():
                inst.set_nodeattr("weightDataType", "BIPOLAR")
                model.set_tensor_datatype(node.input[1], DataType["BIPOLAR"])
        return model, False


def minimize_widths(model: ModelWrapper, widen_xnor: bool = True) -> ModelWrapper:
    """FINN's bit-width minimization with our corrections, in the order they need."""
    from finn.transformation.fpgadataflow.minimize_accumulator_width import (
        MinimizeAccumulatorWidth,
    )
    from finn.transformation.fpgadataflow.minimize_weight_bit_width import MinimizeWeightBitWidth
    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds

    # a stand-alone threshold layer on an unsigned input (e.g. an XNOR unit's popcount) may
    # hold thresholds below 0 (always firing), which FINN's weight minimization asserts
    # against; clipping them to the input range first is exact
    model = model.transform(RoundAndClipThresholds())
    model = model.transform(MinimizeWeightBitWidth())
    model = model.transform(MinimizeAccumulatorWidth())
    model = model.transform(WidenElementwiseAdd())
    if widen_xnor:
        model = model.transform(WidenXnorAccumulators())
    model = model.transform(InferDataTypes())
    model = model.transform(RoundAndClipThresholds())
    model = model.transform(ClipXnorThresholds())
    model = model.transform(InferDataTypes())
    model = model.transform(MinimizeWeightBitWidth())
    model = model.transform(RestoreBipolarWeights())
    return model.transform(InferDataTypes())


def _fits(values: np.ndarray, dt: DataType) -> bool:
    return bool(values.size == 0 or (values.min() >= dt.min() and values.max() <= dt.max()))


def _mvau_problems(model: ModelWrapper, node) -> list[str]:
    inst = getCustomOp(node)
    problems = []
    w = np.asarray(model.get_initializer(node.input[1]), dtype=np.float64)
    wdt = DataType[inst.get_nodeattr("weightDataType")]
    idt = DataType[inst.get_nodeattr("inputDataType")]
    adt = DataType[inst.get_nodeattr("accDataType")]
    if inst.get_nodeattr("binaryXnorMode"):
        if not np.isin(w, (0, 1)).all():
            problems.append("XNOR weights are not all 0/1")
        lo, hi = 0.0, float(inst.get_nodeattr("MW"))
    else:
        if not all(wdt.allowed(v) for v in np.unique(w)):
            problems.append(f"weights outside {wdt.name}")
        lo, hi = calculate_matvec_accumulator_range(w, idt)
    if lo < adt.min() or hi > adt.max():
        problems.append(f"accumulator range [{lo:g}, {hi:g}] does not fit {adt.name}")
    if not inst.get_nodeattr("noActivation") and len(node.input) > 2:
        t = np.asarray(model.get_initializer(node.input[2]), dtype=np.float64)
        tdt = model.get_tensor_datatype(node.input[2])
        if not np.array_equal(t, np.round(t)):
            problems.append("thresholds are not integers")
        if not _fits(t, tdt):
            problems.append(f"thresholds [{t.min():g}, {t.max():g}] do not fit {tdt.name}")
        odt = DataType[inst.get_nodeattr("outputDataType")]
        act = inst.get_nodeattr("ActVal")
        levels = np.array([act, act + t.shape[1]], dtype=np.float64)
        if odt == DataType["BIPOLAR"]:
            levels = np.array([-1.0, 1.0])
        if not _fits(levels, odt):
            problems.append(f"output levels {levels.tolist()} do not fit {odt.name}")
    elif inst.get_nodeattr("noActivation"):
        odt = DataType[inst.get_nodeattr("outputDataType")]
        if lo < odt.min() or hi > odt.max():
            problems.append(f"accumulator range [{lo:g}, {hi:g}] does not fit output {odt.name}")
    return problems


def _thresholding_problems(model: ModelWrapper, node) -> list[str]:
    inst = getCustomOp(node)
    t = np.asarray(model.get_initializer(node.input[1]), dtype=np.float64)
    idt = DataType[inst.get_nodeattr("inputDataType")]
    odt = DataType[inst.get_nodeattr("outputDataType")]
    wdt = DataType[inst.get_nodeattr("weightDataType")]
    problems = []
    if idt.is_integer() and not np.array_equal(t, np.round(t)):
        problems.append("thresholds are not integers")
    if not _fits(t, wdt):
        problems.append(f"thresholds [{t.min():g}, {t.max():g}] do not fit {wdt.name}")
    act = inst.get_nodeattr("ActVal")
    levels = np.array([act, act + t.shape[1]], dtype=np.float64)
    if odt == DataType["BIPOLAR"]:
        levels = np.array([-1.0, 1.0])
    if not _fits(levels, odt):
        problems.append(f"output levels {levels.tolist()} do not fit {odt.name}")
    return problems


CHECKS = {"MVAU": _mvau_problems, "Thresholding": _thresholding_problems}


def check_datatypes(model: ModelWrapper) -> int:
    """Raise DataTypeCheckError naming every layer whose types cannot hold its values.
    Returns the number of layers checked."""
    failures = []
    checked = 0
    from hw_gen.layers.base import HwgenLayer

    for node in model.graph.node:
        check = CHECKS.get(_base_op(node))
        if check is None and node.domain.startswith("finn.custom_op.fpgadataflow"):
            inst = getCustomOp(node)
            if isinstance(inst, HwgenLayer):
                check = lambda model, node, inst=inst: inst.datatype_problems()  # noqa: E731
        if check is None:
            continue
        checked += 1
        failures += [f"{node.name}: {p}" for p in check(model, node)]
    if failures:
        raise DataTypeCheckError("data type check failed: " + "; ".join(failures))
    return checked
