"""The half-to-even fix a step graph still owes, applied to a copy for execution.

Brevitas rounds half to even; a MultiThreshold fires on ``x >= T`` (half up). The lowering
tags the thresholds that come from multi-bit quantizers (``hwgen_half_even``) and fixes them
in the streamline step, once their inputs are integers (:mod:`hw_gen.lowering.rounding`).
Until then a step graph rounds exact ties up, and everything downstream of such a tie
differs from torch. To check those steps exactly, the check executes a copy in which each
pending threshold whose upper level is odd becomes the next float32 above it: for a float32
input, ``x >= nextafter(T)`` is ``x > T``, half to even at an exact tie and unchanged
elsewhere. The saved step graphs are not modified. Before the streamline step every tagged
threshold is excused this way (the fix runs there, even where an input is already integer, as
after a residual add of two unit-scale activations); from the streamline step on only those on
float inputs are: on an integer input the fix is due, and a graph that still owes it there is
compared as it is.
"""

from __future__ import annotations

import copy

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from hw_gen.lowering.graph import attr, scalar_initializer
from hw_gen.lowering.rounding import TIE_ATTR


def _level_offset(model: ModelWrapper, tensor: str) -> float:
    """The integer bias a chain of single-consumer constant Adds adds after ``tensor``
    (ConvertQONNXtoFINN leaves a signed quantizer's bias there until streamlining)."""
    offset = 0.0
    while True:
        consumers = model.find_consumers(tensor) or []
        if len(consumers) != 1 or consumers[0].op_type != "Add":
            return offset
        value = scalar_initializer(model, consumers[0].input[1])
        if value is None:
            return offset
        offset += value
        tensor = consumers[0].output[0]


def _pending(model: ModelWrapper, node, fix_ran: bool) -> bool:
    """A tagged threshold the lowering has not had the chance to fix: any before the fix ran,
    one on a float input after. (After it, on an integer input the fix is due; one still
    pending there is not excused.)"""
    return (
        node.op_type == "MultiThreshold"
        and bool(attr(node, TIE_ATTR, 0))
        and (not fix_ran or not model.get_tensor_datatype(node.input[0]).is_integer())
    )


def with_pending_ties(model: ModelWrapper, fix_ran: bool = True) -> tuple[ModelWrapper, int]:
    """A copy of ``model`` with the pending half-to-even thresholds applied, and how many
    thresholds moved; ``(model, 0)`` when nothing is pending. ``fix_ran``: the graph comes
    from the streamline step (where the lowering fixes ties) or a later one."""
    if not any(_pending(model, n, fix_ran) for n in model.graph.node):
        return model, 0
    fixed = ModelWrapper(copy.deepcopy(model.model))
    moved = 0
    for node in fixed.graph.node:
        if not _pending(fixed, node, fix_ran):
            continue
        thresholds = np.asarray(fixed.get_initializer(node.input[1]), dtype=np.float32)
        base = attr(node, "out_bias", 0.0) + _level_offset(fixed, node.output[0])
        upper = base + np.arange(1, thresholds.shape[1] + 1)
        odd = (np.round(upper).astype(np.int64) % 2 == 1)[None, :] & np.ones_like(thresholds, bool)
        shifted = np.where(odd, np.nextafter(thresholds, np.float32(np.inf)), thresholds)
        moved += int(np.count_nonzero(odd))
        fixed.set_initializer(node.input[1], shifted.astype(np.float32))
    return fixed, moved
