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


def exact_argmax(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    """Torch's labels as exact arithmetic gives them: the first class whose logit is within
    float rounding of the maximum. Float logits of equal integer scores may differ in their
    last bits, which makes a plain argmax pick either of the tied classes."""
    tol = LOGIT_RTOL * max(1.0, float(np.abs(logits).max()))
    top = logits.max(axis=axis, keepdims=True)
    return np.argmax(logits >= top - tol, axis=axis)


def compare_finn_with_torch(
    model: ModelWrapper, torch_model, x: np.ndarray
) -> TorchComparison:
    """FINN's Python execution of ``model`` against torch on input ``x`` (float NCHW, pixels
    k/255 for an 8-bit input): labels must be identical, logits equal to float rounding."""
    ref = torch_reference(torch_model, x)
    out = finn_execute(model, x)
    ref_labels = exact_argmax(ref)
    labels_equal = None
    mismatched = 0
    if LABELS_NAME in out:
        got = out[LABELS_NAME].reshape(ref_labels.shape).astype(np.int64)
        labels_equal = bool(np.array_equal(got, ref_labels))
        mismatched = int(np.count_nonzero(got != ref_labels))
    logits_name = next((o.name for o in model.graph.output if o.name != LABELS_NAME), None)
    diff = tol = None
    if logits_name is not None:
        logits = out[logits_name].reshape(ref.shape)
        diff = float(np.abs(logits - ref).max())
        tol = LOGIT_RTOL * max(1.0, float(np.abs(ref).max()))
        if labels_equal is None:
            got = exact_argmax(logits)
            labels_equal = bool(np.array_equal(got, ref_labels))
            mismatched = int(np.count_nonzero(got != ref_labels))
    return TorchComparison(labels_equal, diff, tol, mismatched)
