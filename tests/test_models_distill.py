"""Distillation terms of ``trainer.fit`` against hand-computed values on tiny tensors."""

import math

import pytest
import torch

from brevitas_models.data.common import IGNORE_INDEX
from brevitas_models.trainer import attention_map, distill_loss, feature_loss


def _two_pixels():
    # N=1, C=2, H=1, W=3: the third pixel is unlabelled
    student = torch.tensor([[[[0.0, 1.0, 5.0]], [[0.0, -1.0, 0.0]]]])
    teacher = torch.tensor([[[[math.log(3.0), 0.0, 0.0]], [[0.0, 0.0, 9.0]]]])
    labels = torch.tensor([[[1, 0, IGNORE_INDEX]]])
    return student, teacher, labels


def _kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q))


def test_distill_loss_is_the_mean_kl_over_labelled_pixels():
    student, teacher, labels = _two_pixels()
    e = math.e
    first = _kl([0.75, 0.25], [0.5, 0.5])
    second = _kl([0.5, 0.5], [e / (e + 1 / e), (1 / e) / (e + 1 / e)])
    assert float(distill_loss(student, teacher, 1.0, labels)) == pytest.approx((first + second) / 2)


def test_class_weighted_distill_loss_weighs_each_pixel_by_its_label():
    student, teacher, labels = _two_pixels()
    e = math.e
    first = _kl([0.75, 0.25], [0.5, 0.5])  # label 1, weight 3
    second = _kl([0.5, 0.5], [e / (e + 1 / e), (1 / e) / (e + 1 / e)])  # label 0, weight 1
    weights = torch.tensor([1.0, 3.0])
    loss = distill_loss(student, teacher, 1.0, labels, weights)
    assert float(loss) == pytest.approx((3 * first + second) / 4)


def test_attention_transfer_by_hand():
    # channel means of x^2: [2, 0] and [0, 1] -> normalised [1, 0] and [0, 1], distance^2 2
    x = torch.tensor([[[[1.0, 0.0]], [[math.sqrt(3.0), 0.0]]]])
    y = torch.tensor([[[[0.0, 1.0]], [[0.0, -1.0]]]])
    assert attention_map(x)[0].tolist() == pytest.approx([1.0, 0.0])
    assert float(feature_loss({"a": x, "b": x}, {"a": y, "b": x})) == pytest.approx(1.0)
