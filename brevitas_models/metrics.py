"""Dense-prediction metrics: mIoU / pixel accuracy (segmentation), MaxF / AP (KITTI Road style
binary maps, ours: no library computes them in the perspective view), and the saliency
metrics of ``pysodmetrics`` (MAE, F-measure with beta^2 = 0.3, S-measure, E-measure).

All meters accumulate over batches (``update``) and report at the end; labels equal to the
ignore index are skipped everywhere.
"""

from __future__ import annotations

import numpy as np
import torch

from brevitas_models.data.common import IGNORE_INDEX

# Score thresholds of the binary-map meters: scores in [0, 1], 256 levels as in 8-bit maps.
NUM_THRESHOLDS = 256


def _numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


class ConfusionMatrix:
    """Confusion matrix over ``num_classes`` classes (rows: truth, columns: prediction)."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), np.int64)

    def update(self, prediction, target) -> None:
        """Add integer label maps of equal shape (any layout)."""
        pred, true = _numpy(prediction).ravel(), _numpy(target).ravel()
        if pred.shape != true.shape:
            raise ValueError(f"prediction {pred.shape} and target {true.shape} differ in size")
        keep = true != self.ignore_index
        pred, true = pred[keep].astype(np.int64), true[keep].astype(np.int64)
        if pred.size and (pred.min() < 0 or pred.max() >= self.num_classes):
            raise ValueError(f"prediction outside [0, {self.num_classes})")
        if true.size and (true.min() < 0 or true.max() >= self.num_classes):
            raise ValueError(f"target outside [0, {self.num_classes}) and not {self.ignore_index}")
        self.matrix += np.bincount(
            true * self.num_classes + pred, minlength=self.num_classes**2
        ).reshape(self.num_classes, self.num_classes)

    def iou(self) -> np.ndarray:
        """IoU per class; NaN for a class absent from both truth and prediction."""
        tp = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / union, np.nan)

    def miou(self) -> float:
        """Mean IoU over the classes that occur (in truth or prediction)."""
        iou = self.iou()
        return float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else float("nan")


class _ThresholdCounts:
    """Per-threshold true/false positives of a score map against a binary truth."""

    def __init__(self, num_thresholds: int = NUM_THRESHOLDS):
        # threshold k fires on score >= k / (num_thresholds - 1)
        self.num_thresholds = num_thresholds

    def counts(self, scores: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        levels = np.clip(np.floor(scores * (self.num_thresholds - 1) + 1e-9), 0, self.num_thresholds - 1)
        levels = levels.astype(np.int64)
        pos_hist = np.bincount(levels[truth], minlength=self.num_thresholds)
        neg_hist = np.bincount(levels[~truth], minlength=self.num_thresholds)
        # positives predicted at threshold k: all pixels with level >= k
        tp = np.cumsum(pos_hist[::-1])[::-1]
        fp = np.cumsum(neg_hist[::-1])[::-1]
        return tp, fp


def _valid(scores, target, ignore_index: int) -> tuple[np.ndarray, np.ndarray]:
    s, t = _numpy(scores).ravel().astype(np.float64), _numpy(target).ravel()
    if s.shape != t.shape:
        raise ValueError(f"scores {s.shape} and target {t.shape} differ in size")
    keep = t != ignore_index
    return s[keep], t[keep] == 1


class BinaryPRMeter(_ThresholdCounts):
    """KITTI Road style: pixel counts summed over all images, then MaxF (F1 maximised over
    thresholds) and AP (11-point interpolated average precision, as in the KITTI road devkit)."""

    def __init__(self, ignore_index: int = IGNORE_INDEX, num_thresholds: int = NUM_THRESHOLDS):
        super().__init__(num_thresholds)
        self.ignore_index = ignore_index
        self.tp = np.zeros(num_thresholds, np.int64)
        self.fp = np.zeros(num_thresholds, np.int64)
        self.positives = 0

    def update(self, scores, target) -> None:
        """``scores`` in [0, 1] (probability of the positive class), ``target`` in {0, 1, ignore}."""
        s, truth = _valid(scores, target, self.ignore_index)
        tp, fp = self.counts(s, truth)
        self.tp += tp
        self.fp += fp
        self.positives += int(truth.sum())

    def precision_recall(self) -> tuple[np.ndarray, np.ndarray]:
        """Per threshold; precision is NaN where the threshold predicts no positive."""
        predicted = self.tp + self.fp
        precision = np.where(predicted > 0, self.tp / np.maximum(predicted, 1), np.nan)
        recall = self.tp / self.positives if self.positives else np.zeros(self.num_thresholds)
        return precision, recall

    def max_f(self) -> float:
        precision, recall = self.precision_recall()
        defined = ~np.isnan(precision) & (precision + recall > 0)
        if not defined.any():
            return 0.0
        p, r = precision[defined], recall[defined]
        return float((2 * p * r / (p + r)).max())

    def average_precision(self) -> float:
        precision, recall = self.precision_recall()
        total = 0.0
        for level in np.linspace(0.0, 1.0, 11):
            reached = (recall >= level - 1e-12) & ~np.isnan(precision)
            total += float(precision[reached].max()) if reached.any() else 0.0
        return total / 11.0


class SaliencyMeter:
    """Salient object detection through ``pysodmetrics`` (the field's library): MAE, max and
    mean F-measure (beta^2 = 0.3, over 256 thresholds of the 8-bit map), S-measure, max and
    mean E-measure. Each image's saliency in [0, 1] becomes the 8-bit map ``round(255 s)``,
    its mask 0 / 255, as the library reads them from disk."""

    def __init__(self):
        import py_sod_metrics as sod

        self._meters = {"mae": sod.MAE(), "fm": sod.Fmeasure(), "sm": sod.Smeasure(),
                        "em": sod.Emeasure()}

    @staticmethod
    def as_maps(scores, target) -> tuple[np.ndarray, np.ndarray]:
        """The 8-bit prediction and mask the library takes, for one H x W image."""
        pred = np.round(np.clip(_numpy(scores).astype(np.float64), 0, 1) * 255).astype(np.uint8)
        gt = np.where(_numpy(target) == 1, 255, 0).astype(np.uint8)
        return pred, gt

    def update(self, scores, target) -> None:
        """Add one image: ``scores`` H x W in [0, 1], ``target`` H x W in {0, 1}."""
        pred, gt = self.as_maps(scores, target)
        for meter in self._meters.values():
            meter.step(pred=pred, gt=gt)

    def results(self) -> dict[str, float]:
        fm = self._meters["fm"].get_results()["fm"]["curve"]
        em = self._meters["em"].get_results()["em"]["curve"]
        return {
            "mae": float(self._meters["mae"].get_results()["mae"]),
            "max_f": float(fm.max()),
            "mean_f": float(fm.mean()),
            "s_measure": float(self._meters["sm"].get_results()["sm"]),
            "max_e": float(em.max()),
            "mean_e": float(em.mean()),
        }
