"""Metrics on tiny arrays whose results were computed by hand."""

import math

import numpy as np
import pytest
import torch

from brevitas_models.metrics import BinaryPRMeter, ConfusionMatrix, SaliencyMeter


def test_confusion_matrix_miou_and_accuracy_with_ignore():
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([[0, 1], [1, 1]]), torch.tensor([[0, 1], [0, 255]]))
    assert cm.matrix.tolist() == [[1, 1], [0, 1]]
    # class 0: tp 1, union 2; class 1: tp 1, union 2
    assert cm.iou().tolist() == [0.5, 0.5]
    assert cm.miou() == 0.5
    assert cm.pixel_accuracy() == pytest.approx(2 / 3)


def test_confusion_matrix_accumulates_over_batches():
    rng = np.random.default_rng(0)
    pred, true = rng.integers(0, 4, (3, 5, 5)), rng.integers(0, 4, (3, 5, 5))
    true[0, 0, :] = 255
    whole, batched = ConfusionMatrix(4), ConfusionMatrix(4)
    whole.update(pred, true)
    for p, t in zip(pred, true):
        batched.update(p, t)
    assert np.array_equal(whole.matrix, batched.matrix)
    assert whole.matrix.sum() == 3 * 25 - 5


def test_absent_class_is_left_out_of_the_mean():
    cm = ConfusionMatrix(3)
    cm.update(np.array([0, 0, 1]), np.array([0, 1, 1]))
    iou = cm.iou()
    assert iou[0] == 0.5 and iou[1] == 0.5 and math.isnan(iou[2])
    assert cm.miou() == 0.5


def test_confusion_matrix_rejects_out_of_range_labels():
    cm = ConfusionMatrix(2)
    with pytest.raises(ValueError, match="prediction outside"):
        cm.update(np.array([2]), np.array([0]))
    with pytest.raises(ValueError, match="target outside"):
        cm.update(np.array([0]), np.array([7]))


def test_binary_maxf_and_eleven_point_ap():
    meter = BinaryPRMeter()
    meter.update(np.array([0.9, 0.8, 0.3, 0.1, 0.5]), np.array([1, 0, 1, 0, 255]))
    # thresholds keeping {0.9, 0.8, 0.3}: P 2/3, R 1, F 0.8 (the best)
    assert meter.max_f() == pytest.approx(0.8)
    # recall levels 0..0.5: best precision 1 (only 0.9 kept); 0.6..1: 2/3
    assert meter.average_precision() == pytest.approx((6 * 1.0 + 5 * (2 / 3)) / 11)


def test_binary_meter_sums_counts_over_images():
    one, two = BinaryPRMeter(), BinaryPRMeter()
    scores, truth = np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 1, 0])
    one.update(scores, truth)
    two.update(scores[:2], truth[:2])
    two.update(scores[2:], truth[2:])
    assert np.array_equal(one.tp, two.tp) and np.array_equal(one.fp, two.fp)
    assert one.max_f() == two.max_f()


def test_saliency_metrics_on_a_hand_computed_image():
    meter = SaliencyMeter()
    meter.update(np.array([[1.0, 0.6], [0.2, 0.0]]), np.array([[1, 1], [0, 0]]))
    got = meter.results()
    assert got["mae"] == pytest.approx(0.15)  # |0.6 - 1| and |0.2 - 0| over 4 pixels
    assert got["max_f"] == pytest.approx(1.0)  # a threshold in (0.2, 0.6] separates them
    # thresholds 0..255: the map >= t. Above 255 * 0.6 = 153 only the 1.0 pixel: P 1, R 1/2
    f_half = 1.3 * 0.5 / (0.3 * 1 + 0.5)
    assert got["mean_f"] < 1.0 and got["mean_f"] > f_half * 100 / 256
