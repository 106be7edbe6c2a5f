"""The build's ``threeway`` step: every saved lowering step against the model itself.

The exported QONNX file, run by qonnx's executor on the build's input, is the reference
(:func:`hw_gen.threeway.check_against_qonnx`); with a torch model (``--torch``), torch's
quantizers are (:func:`hw_gen.threeway.check_against_torch`). Every tensor the lowering keeps
a counterpart of is compared integer for integer in FINN's Python execution (where it runs)
and in sim, and the graph outputs of the last step in sim: integer labels equal (the model's
own ties resolved to the first class, as the hardware does), float logits equal to the
model's within the rounding of the final float scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from hw_gen.build import StepResult
from hw_gen.lowering.interface import LABELS_NAME
from hw_gen.threeway.reference import Reference
from hw_gen.threeway.result import EQUAL, ThreeWayResult
from hw_gen.verify import LOGIT_RTOL

RESULT_NAME = "verify.json"


def logits_tolerance(reference_logits: np.ndarray) -> float:
    """How far float logits may be from the model's: the float32 rounding of the final
    scale, applied in another order (relative to the largest logit)."""
    return LOGIT_RTOL * max(1.0, float(np.abs(reference_logits).max()))


def output_failures(reference: Reference, outputs: dict[str, np.ndarray]) -> tuple[list[str], int]:
    """The graph outputs (``labels``, logits) against the reference's: what differs, and how
    many values were compared."""
    failures, compared = [], 0
    if LABELS_NAME in outputs and reference.labels is not None:
        want = reference.labels.astype(np.int64)
        got = np.asarray(outputs[LABELS_NAME]).astype(np.int64)
        compared += want.size
        if got.size != want.size:
            failures.append(f"labels: shape {got.shape}, the model's {want.shape}")
        elif not np.array_equal(got.reshape(want.shape), want):
            n = int(np.count_nonzero(got.reshape(want.shape) != want))
            failures.append(f"labels: {n} of {want.size} differ from the model's")
    logits = [v for k, v in outputs.items() if k != LABELS_NAME]
    if logits and reference.logits is not None:
        want = np.asarray(reference.logits, dtype=np.float64)
        got = np.asarray(logits[0], dtype=np.float64)
        compared += want.size
        if got.size != want.size:
            failures.append(f"logits: shape {got.shape}, the model's {want.shape}")
        else:
            diff = np.abs(got.reshape(want.shape) - want)
            tol = logits_tolerance(want)
            if diff.max(initial=0.0) > tol:
                n = int(np.count_nonzero(diff > tol))
                failures.append(f"logits: {n} of {want.size} differ from the model's by more "
                                f"than {tol:.3g} (up to {diff.max():.3g})")
    return failures, compared


def first_failure(result: ThreeWayResult) -> str:
    """The first step and tensor that differ, and how many integers differ there."""
    for step in result.steps:
        if step.passed:
            continue
        for t in step.tensors:
            bad = {e: v for e, v in t.engines.items() if v != EQUAL}
            if bad:
                engine, verdict = next(iter(bad.items()))
                return (f"first difference at step {step.step}, tensor {t.tensor} "
                        f"({t.activation}, {engine}): {verdict}")
        if step.errors:
            return f"step {step.step}: {step.errors[0]}"
        return f"step {step.step}: no engine could run it"
    return "no step was checked"


def run_threeway(
    out: Path, model_path: Path, x: np.ndarray, torch_model=None,
    progress: Callable[[str], None] | None = None,
) -> tuple[StepResult, Reference]:
    """The build step (see the module doc); writes ``OUT/verify.json``."""
    from qonnx.core.modelwrapper import ModelWrapper

    from hw_gen.lowering.pipeline import step_path
    from hw_gen.threeway.check import check_lowering
    from hw_gen.threeway.reference import qonnx_reference, torch_reference

    qonnx = ModelWrapper(str(step_path(out, "qonnx_cleanup")))
    if torch_model is not None:
        reference = torch_reference(torch_model, qonnx, x)
        against = "the torch model's quantizers (through its own modules)"
    else:
        reference = qonnx_reference(qonnx, x, ModelWrapper(str(model_path)))
        against = "the exported QONNX model run by qonnx's executor"
    result = check_lowering(out, reference, progress=progress)
    result.write_json(out / RESULT_NAME)
    integers = sum(s.integers_compared for s in result.steps)
    compared = {"references": [against, "FINN's Python execution and sim of every lowering "
                               "step graph"], "integers": integers}
    extra = {"steps": {s.step: "+".join(s.ran) for s in result.steps}, "file": RESULT_NAME}
    if not result.passed:
        return StepResult("threeway", "fail", first_failure(result), compared, extra=extra), \
            reference
    return StepResult(
        "threeway", "pass",
        f"{len(result.steps)} lowering steps x {len(result.activations)} quantized activations "
        f"equal to the model ({integers} integers, {result.frames} frame(s))",
        compared, extra=extra,
    ), reference
