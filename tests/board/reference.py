"""What the model computes, from its float logits (qonnx's run), for the driver tests (numpy)."""

import numpy as np


def expected_outputs(logits: np.ndarray, scale: np.ndarray, bias: np.ndarray):
    """The model's integer scores (its layout) and labels. The scores undo the model's scale
    and bias; the labels are the argmax of ``scores * scale + bias`` in float64, first index on
    ties, as in exact arithmetic (float32 rounding breaks the model's ties arbitrarily)."""
    scores = np.rint((logits - bias) / scale).astype(np.int64)
    exact = scores * scale.astype(np.float64) + bias.astype(np.float64)
    return scores, np.argmax(exact, axis=1)
