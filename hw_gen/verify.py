"""Checks of a lowered graph against the torch model it came from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from hw_gen.lowering.execute import finn_execute
from hw_gen.lowering.interface import LABELS_NAME

# Logits pass through float scaling in both implementations, in different orders.
LOGIT_RTOL = 1e-5


@dataclass
class TorchComparison:
    labels_equal: bool | None
    logits_max_abs_diff: float | None
    logits_tolerance: float | None
    mismatched_labels: int = 0
    notes: list[str] = field(default_factory=list)
    tied_labels: int = 0  # pixels whose top scores tie (the first index is expected)

    @property
    def passed(self) -> bool:
        ok = self.labels_equal is not False
        if self.logits_max_abs_diff is not None:
            ok = ok and self.logits_max_abs_diff <= self.logits_tolerance
        return ok


def torch_reference(torch_model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        out = torch_model(torch.as_tensor(x, dtype=torch.float32))
    return np.asarray(getattr(out, "value", out).detach().numpy(), dtype=np.float64)


def compare_finn_with_torch(
    model: ModelWrapper, torch_model, x: np.ndarray
) -> TorchComparison:
    """FINN's Python execution of ``model`` against torch on input ``x`` (float NCHW, pixels
    k/255 for an 8-bit input): labels must be identical (at scores tied up to float rounding,
    the first of them: :func:`expected_labels`), logits equal to float rounding."""
    ref = torch_reference(torch_model, x)
    out = finn_execute(model, x)
    tol = LOGIT_RTOL * max(1.0, float(np.abs(ref).max()))
    ref_labels = expected_labels(ref, tol)
    labels_equal = None
    mismatched = 0
    if LABELS_NAME in out:
        got = out[LABELS_NAME].reshape(ref_labels.shape).astype(np.int64)
        labels_equal = bool(np.array_equal(got, ref_labels))
        mismatched = int(np.count_nonzero(got != ref_labels))
    logits_name = next((o.name for o in model.graph.output if o.name != LABELS_NAME), None)
    diff = None
    if logits_name is not None:
        logits = out[logits_name].reshape(ref.shape)
        diff = float(np.abs(logits - ref).max())
        if labels_equal is None:
            got = expected_labels(logits, tol)
            labels_equal = bool(np.array_equal(got, ref_labels))
            mismatched = int(np.count_nonzero(got != ref_labels))
    ties = int(np.count_nonzero(_near_top(ref, tol).sum(axis=1) > 1))
    return TorchComparison(labels_equal, diff if logits_name else None,
                           tol if logits_name else None, mismatched, tied_labels=ties)


def expected_labels(ref: np.ndarray, tol: float) -> np.ndarray:
    """Per pixel, the first class whose torch logit is within ``tol`` of the largest.

    The hardware's scores are integers and FINN's LabelSelect (like torch's argmax) takes
    the first index among equal scores; torch's float logits of equal integer scores may
    differ by rounding, so its own argmax can pick a later one of them."""
    return np.argmax(_near_top(ref, tol), axis=1)


def _near_top(ref: np.ndarray, tol: float) -> np.ndarray:
    return ref >= ref.max(axis=1, keepdims=True) - tol


def exact_argmax(logits: np.ndarray) -> np.ndarray:
    """:func:`expected_labels` with the comparison's own tolerance for these logits."""
    return expected_labels(logits, LOGIT_RTOL * max(1.0, float(np.abs(logits).max())))
