"""Labels at tied scores: the first index, as FINN's LabelSelect and torch's argmax take it."""

import numpy as np

from hw_gen.verify import LOGIT_RTOL, expected_labels


def test_first_index_among_float_noisy_ties():
    """Three classes with the integer score 2 (x 0.1): torch's float logits differ in the
    last bit and its argmax picks class 1; the hardware (LabelSelect keeps the first of equal
    values: ``val > topval``) picks class 0, which is what torch's argmax means."""
    ref = np.array([0.19999999, 0.20000002, -0.20000002, 0.19999999], dtype=np.float32)
    ref = ref.astype(np.float64).reshape(1, 4, 1, 1)
    assert ref.argmax(axis=1).item() == 1
    assert expected_labels(ref, LOGIT_RTOL).item() == 0


def test_separated_logits_keep_argmax():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(2, 5, 3, 4))
    assert np.array_equal(expected_labels(ref, LOGIT_RTOL), ref.argmax(axis=1))
    ref[0, 3, 1, 1] = ref[0, :, 1, 1].max() + 1e-3  # a real lead, far above the tolerance
    assert expected_labels(ref, LOGIT_RTOL)[0, 1, 1] == 3
