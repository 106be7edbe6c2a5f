"""Run every saved step graph of a lowering in FINN's Python execution and in sim, and compare
each tensor that carries a quantized activation with the reference integers.

FINN executes a step graph unless it holds specialized (``_hls``/``_rtl``) layers; sim
executes it unless it holds ops sim has no kernel for, which is by design only before
streamlining (float Conv, BatchNormalization, Quant): once sim has run a step, a later step
it refuses is a failure. Before ConvertQONNXtoFINN the activations are the quantizers'
output tensors (``scale * q``, by name); from then on the tensors tagged by
:mod:`hw_gen.lowering.activation_tags`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

import sim
from hw_gen.bundle import BundleError, to_sim_bundle
from hw_gen.finn_adapter import finn_log, init_finn
from hw_gen.folding import is_hw
from hw_gen.lowering.activation_tags import (
    activation_quants,
    fused_activations,
    tagged_tensors,
)
from hw_gen.lowering.execute import finn_execute, graph_input
from hw_gen.lowering.interface import LABELS_NAME
from hw_gen.lowering.pipeline import STEP_NAMES, step_path
from hw_gen.threeway.compare import decode, mismatch
from hw_gen.threeway.reference import Activation, Reference, qonnx_reference, torch_reference
from hw_gen.threeway.result import EQUAL, LABELS, StepCheck, TensorCheck, ThreeWayResult
from hw_gen.threeway.ties import with_pending_ties

TIE_FIX_STEP = "streamline"  # where hw_gen.lowering.rounding fixes half-to-even ties
from sim.kernels import get_kernel, normalise_op_type

Context = dict[str, np.ndarray]
# An engine's run: (every tensor, or None; why it did not run, by design; what failed)
Outcome = tuple[Context | None, str | None, str | None]


def _specialized(model: ModelWrapper) -> list[str]:
    return [n.op_type for n in model.graph.node if n.op_type.endswith(("_hls", "_rtl"))]


def run_finn(model: ModelWrapper, x: np.ndarray, log: Path) -> Outcome:
    """FINN's Python execution of ``model`` on ``x``."""
    if _specialized(model):
        return None, "FINN executes specialized (_hls/_rtl) layers only in C++/RTL simulation", None
    try:
        with finn_log(log):
            return finn_execute(model, x, return_context=True), None, None
    except Exception as exc:  # FINN and onnxruntime raise many types
        first = str(exc).splitlines()[0] if str(exc) else ""
        return None, None, f"FINN's execution failed: {type(exc).__name__}: {first}"


def _unsupported(model: ModelWrapper) -> list[str]:
    ops = {n.op_type for n in model.graph.node
           if get_kernel(normalise_op_type(n.op_type), is_hw(n)) is None}
    return sorted(ops)


def run_sim(model: ModelWrapper, x: np.ndarray, ran_before: bool) -> Outcome:
    """sim on ``model`` and ``x``. A graph with ops sim has no kernel for is not run, unless
    sim already ran an earlier step (then it is an error)."""
    try:
        bundle = to_sim_bundle(model)
    except BundleError as exc:
        if ran_before:
            return None, None, f"sim refuses a graph after it ran earlier steps: {exc}"
        return None, f"sim has no kernel for {', '.join(_unsupported(model)) or exc}", None
    name = bundle.inputs[0].name
    try:
        return sim.run(bundle, {name: graph_input(model, x)}, return_all=True), None, None
    except sim.SimError as exc:
        return None, None, f"sim failed: {exc}"


def counterparts(model: ModelWrapper, reference: Reference) -> dict[str, list[tuple[str, dict]]]:
    """Activation id -> [(tensor, tag)]: by tag, or by the quantizer's output name while the
    graph still has quantizers."""
    if not activation_quants(model):
        return tagged_tensors(model)
    names = set(model.get_all_tensor_names())
    return {a.id: [(a.id, {"scale": a.scale})] for a in reference.activations if a.id in names}


def check_step(
    step: str, model: ModelWrapper, reference: Reference, sim_ran_before: bool, log: Path
) -> StepCheck:
    """Compare one step graph, in FINN's execution and in sim, with ``reference``."""
    record = StepCheck(step)
    contexts = _run_engines(record, model, reference.x, sim_ran_before, log)
    fused = fused_activations(model)
    found = counterparts(model, reference)
    for unknown in sorted(set(found) - set(reference.by_id())):
        record.errors.append(f"tensor {found[unknown][0][0]} is tagged with {unknown}, "
                             "which is no activation of the reference")
    for act in reference.activations:
        if act.id in fused:
            record.fused[act.id] = fused[act.id]
        elif not found.get(act.id):
            record.errors.append(f"activation {act.id} ({act.source}) has no tensor in the "
                                 "graph and is not listed as fused")
        else:
            record.tensors += [_tensor_check(model, act, tensor, tag, contexts)
                               for tensor, tag in found[act.id]]
    labels = _labels_check(model, reference, contexts)
    if labels is not None:
        record.tensors.append(labels)
    return record


def _run_engines(
    record: StepCheck, model: ModelWrapper, x: np.ndarray, sim_ran_before: bool, log: Path
) -> dict[str, Context]:
    """Every tensor of FINN's execution and of sim, for the engines that ran (noted in
    ``record`` with the reasons of those that did not and the failures)."""
    fix_ran = STEP_NAMES.index(record.step) >= STEP_NAMES.index(TIE_FIX_STEP)
    executed, moved = with_pending_ties(model, fix_ran)
    if moved:
        record.notes.append(
            f"executed with {moved} pending half-to-even thresholds applied (hwgen_half_even: "
            "this step rounds exact ties half up until streamline fixes them)"
        )
    contexts: dict[str, Context] = {}
    for engine, (ctx, why_not, error) in (
        ("finn", run_finn(executed, x, log)),
        ("sim", run_sim(executed, x, sim_ran_before)),
    ):
        if ctx is not None:
            contexts[engine] = ctx
            record.ran.append(engine)
        elif why_not:
            record.not_run[engine] = why_not
        if error:
            record.errors.append(error)
    return contexts


def _tensor_check(
    model: ModelWrapper, act: Activation, tensor: str, tag: dict, contexts: dict[str, Context]
) -> TensorCheck:
    check = TensorCheck(act.id, tensor, "", int(act.values.size))
    dtype = model.get_tensor_datatype(tensor)
    for engine, ctx in contexts.items():
        if tensor not in ctx:
            check.engines[engine] = "tensor not computed"
            continue
        decoded = decode(ctx[tensor], act, tag, dtype)
        check.how = decoded.how
        check.engines[engine] = decoded.error or _verdict(decoded.values, act.values)
    return check


def _verdict(got: np.ndarray, want: np.ndarray) -> str:
    diff = mismatch(got, want)
    if diff is None:
        return EQUAL
    return (f"{diff.count} of {want.size} integers differ, first at {diff.first_index}: "
            f"{diff.got} where the reference has {diff.want}")


def _labels_check(
    model: ModelWrapper, reference: Reference, contexts: dict[str, Context]
) -> TensorCheck | None:
    if reference.labels is None or LABELS_NAME not in [o.name for o in model.graph.output]:
        return None
    want = reference.labels.astype(np.int64)
    check = TensorCheck(LABELS, LABELS_NAME, "labels output", int(want.size))
    for engine, ctx in contexts.items():
        got = np.asarray(ctx[LABELS_NAME])
        if got.size != want.size:
            check.engines[engine] = f"{got.shape} labels, the reference has {want.shape}"
        else:
            check.engines[engine] = _verdict(got.reshape(want.shape).astype(np.int64), want)
    return check


def check_lowering(
    out_dir: str | Path,
    reference: Reference,
    steps: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> ThreeWayResult:
    """Check every saved step of the lowering in ``out_dir`` (or only ``steps``)."""
    out = Path(out_dir)
    init_finn(out / "finn_build")
    names = [s for s in (steps or STEP_NAMES) if step_path(out, s).exists()]
    result = ThreeWayResult(
        reference.kind, {a.id: a.source for a in reference.activations}, [],
        int(reference.x.shape[0]), list(reference.notes),
    )
    sim_ran = False
    for name in names:
        if progress is not None:
            progress(name)
        model = ModelWrapper(str(step_path(out, name)))
        record = check_step(name, model, reference, sim_ran, out / "steps" / "finn.log")
        sim_ran = sim_ran or "sim" in record.ran
        result.steps.append(record)
    return result


def check_against_torch(
    torch_model, out_dir: str | Path, x: np.ndarray, **kwargs
) -> ThreeWayResult:
    """The three-way check of the lowering in ``out_dir`` with ``torch_model`` on ``x``."""
    init_finn(Path(out_dir) / "finn_build")
    qonnx = ModelWrapper(str(step_path(out_dir, "qonnx_cleanup")))
    return check_lowering(out_dir, torch_reference(torch_model, qonnx, x), **kwargs)


def check_against_qonnx(
    out_dir: str | Path, x: np.ndarray, exported: str | Path | None = None, **kwargs
) -> ThreeWayResult:
    """The three-way check with the QONNX model as torch's stand-in: the file as exported
    (``exported``) run by qonnx's executor, or else the cleaned-up graph (step
    ``qonnx_cleanup``)."""
    init_finn(Path(out_dir) / "finn_build")
    qonnx = ModelWrapper(str(step_path(out_dir, "qonnx_cleanup")))
    raw = None if exported is None else ModelWrapper(str(exported))
    return check_lowering(out_dir, qonnx_reference(qonnx, x, raw), **kwargs)
