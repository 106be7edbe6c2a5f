"""Data sets by name and each data set's own metrics.

``open_dataset(name, root, split, size)``: ``synthetic`` (generated; ``root`` None), or the
loaders of :mod:`brevitas_models.data.real` on a user's copy. ``evaluate_dataset(model, name,
dataset)``: the metrics the data set's benchmark reports:

| data set   | metrics                                                                     |
|------------|-----------------------------------------------------------------------------|
| synthetic  | mIoU, pixel accuracy, IoU per class (``ConfusionMatrix``)                   |
| cityscapes | the same over the 19 train ids of cityscapesscripts' label table            |
| kitti_road | MaxF, AP of the road probability, in the image's perspective view (ours;   |
|            | the benchmark's official figure is in bird's-eye view), and IoU            |
| ecssd      | MAE, max / mean F (beta^2 = 0.3), S-measure, max / mean E (pysodmetrics)    |

Two-class configurations trained on the synthetic set see ``label > 0`` (foreground) as class 1.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from brevitas_models.data.real import ECSSD, Cityscapes, KittiRoad
from brevitas_models.data.synthetic import SyntheticSegmentation
from brevitas_models.errors import ModelError
from brevitas_models.metrics import BinaryPRMeter, ConfusionMatrix, SaliencyMeter

DATASETS = ("synthetic", "cityscapes", "kitti_road", "ecssd")


class _Foreground(Dataset):
    """A synthetic split with two classes: background 0, any object 1."""

    def __init__(self, base: SyntheticSegmentation):
        self.base = base
        self.num_classes = 2

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        image, label = self.base[index]
        return image, (label > 0).long()


def open_dataset(name: str, root: str | None, split: str, size: tuple[int, int],
                 num_classes: int, length: int = 600, seed: int = 0) -> Dataset:
    """The ``split`` ("train" or "val") of data set ``name`` at ``size`` (H, W)."""
    if name not in DATASETS:
        raise ModelError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    if root is None or name == "synthetic":
        data: Dataset = SyntheticSegmentation(split, length, tuple(size), seed)
        return _Foreground(data) if num_classes == 2 else data
    if name == "cityscapes":
        return Cityscapes(root, split, size)
    # KITTI Road and ECSSD ship no split: the last fifth (sorted by name) is validation
    full = KittiRoad(root, size) if name == "kitti_road" else ECSSD(root, size)
    cut = len(full) - max(1, len(full) // 5) if len(full) > 1 else len(full)
    pairs = full.pairs[:cut] if split == "train" else full.pairs[cut:] or full.pairs
    full.pairs = pairs
    return full


@torch.no_grad()
def evaluate_dataset(model: nn.Module, name: str, dataset: Dataset, num_classes: int,
                     batch_size: int = 4, progress: bool = False) -> dict[str, Any]:
    """The metrics of data set ``name`` (module docstring) for ``model`` on ``dataset``."""
    model.eval()
    matrix = ConfusionMatrix(num_classes)
    road = BinaryPRMeter() if name == "kitti_road" else None
    saliency = SaliencyMeter() if name == "ecssd" else None
    loader = DataLoader(dataset, batch_size=batch_size)
    for images, labels in tqdm(loader, desc="evaluate", unit="batch", disable=not progress):
        logits = model(images)
        matrix.update(logits.argmax(1), labels)
        if road is not None or saliency is not None:
            positive = torch.softmax(logits.float(), 1)[:, 1]
            for score, label in zip(positive, labels):
                (road or saliency).update(score, label)
    out: dict[str, Any] = {}
    if saliency is not None:
        out.update(saliency.results())
    if road is not None:
        out.update({"max_f": road.max_f(), "ap": road.average_precision()})
    out.update({
        "miou": matrix.miou(),
        "pixel_accuracy": matrix.pixel_accuracy(),
        "iou": [None if math.isnan(v) else float(v) for v in matrix.iou()],
    })
    return out


def format_metrics(name: str, metrics: dict[str, Any]) -> str:
    """One line per headline metric, as the data set's benchmark names them."""
    keys = {"ecssd": ("mae", "max_f", "mean_f", "s_measure", "max_e", "mean_e"),
            "kitti_road": ("max_f", "ap", "miou")}.get(name, ("miou", "pixel_accuracy"))
    labels = {"mae": "MAE", "max_f": "max F" if name == "ecssd" else "MaxF (perspective view)",
              "mean_f": "mean F", "s_measure": "S-measure", "max_e": "max E", "mean_e": "mean E",
              "ap": "AP (perspective view)", "miou": "mIoU", "pixel_accuracy": "pixel accuracy"}
    return "\n".join(f"{labels[k]:<24} {metrics[k]:.4f}" for k in keys)
