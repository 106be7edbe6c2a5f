"""Loaders for data sets a user already has on disk (none can be downloaded here).

Each loader is a torch ``Dataset`` of (float image 3 x H x W in [0, 1] = pixel / 255, int64
label H x W with ``IGNORE_INDEX`` = 255 for pixels to skip), optionally resized to ``size``
(H, W) with Pillow (bilinear for images, nearest for labels). A missing folder or an empty
one is a ``ModelError`` naming the expected layout.

``Cityscapes``  ``<root>/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` with
                ``<root>/gtFine/<split>/<city>/<name>_gtFine_labelIds.png``; label ids mapped to
                the 19 train ids of cityscapesscripts' label table, every other id to 255.
``KittiRoad``   ``<root>/training/image_2/<cat>_<num>.png`` with
                ``<root>/training/gt_image_2/<cat>_road_<num>.png``; as in the KITTI road devkit,
                a pixel is valid if its red channel is > 0 and road if its blue channel is > 0
                (road = magenta (255, 0, 255): 1, red (255, 0, 0): 0, black: 255).
``ECSSD``       ``<root>/images/<name>.jpg`` with ``<root>/ground_truth_mask/<name>.png``;
                saliency = mask > 127 (1), else 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from brevitas_models.data.common import IGNORE_INDEX, to_float_image
from brevitas_models.errors import ModelError

def _cityscapes_table() -> tuple[dict[int, int], tuple[str, ...]]:
    """Label id -> train id of the 19 evaluated classes, and their names in train-id order,
    from the official label table (``cityscapesscripts.helpers.labels``)."""
    from cityscapesscripts.helpers.labels import labels

    evaluated = [l for l in labels if not l.ignoreInEval and 0 <= l.trainId < IGNORE_INDEX]
    names = tuple(l.name for l in sorted(evaluated, key=lambda l: l.trainId))
    return {l.id: l.trainId for l in evaluated}, names


CITYSCAPES_TRAIN_IDS, CITYSCAPES_CLASSES = _cityscapes_table()

_CITYSCAPES_LUT = np.full(256, IGNORE_INDEX, np.uint8)
for _label_id, _train_id in CITYSCAPES_TRAIN_IDS.items():
    _CITYSCAPES_LUT[_label_id] = _train_id


class _PairedImages(Dataset):
    """(image path, label path) pairs, decoded by ``decode_label``; optional resize."""

    num_classes: int
    ignore_index = IGNORE_INDEX

    def __init__(self, pairs: list[tuple[Path, Path]], size: tuple[int, int] | None):
        self.pairs = pairs
        self.size = size

    def decode_label(self, label: Image.Image) -> np.ndarray:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_path, label_path = self.pairs[index]
        image = Image.open(image_path).convert("RGB")
        label = Image.open(label_path)
        if self.size is not None:
            height, width = self.size
            image = image.resize((width, height), Image.BILINEAR)
            label = label.resize((width, height), Image.NEAREST)
        target = self.decode_label(label)
        return to_float_image(np.asarray(image, np.uint8)), torch.from_numpy(target.astype(np.int64))


def _require(found: list, root: Path, dataset: str, layout: str) -> None:
    if not found:
        raise ModelError(f"{dataset}: no data at {root}; expected {layout}")


class Cityscapes(_PairedImages):
    """Cityscapes fine annotations, 19 train ids."""

    num_classes = len(CITYSCAPES_CLASSES)
    class_names = CITYSCAPES_CLASSES

    def __init__(self, root: str | Path, split: str = "val", size: tuple[int, int] | None = None):
        root = Path(root)
        layout = (
            f"{root}/leftImg8bit/{split}/<city>/*_leftImg8bit.png and "
            f"{root}/gtFine/{split}/<city>/*_gtFine_labelIds.png"
        )
        pairs = []
        for image in sorted((root / "leftImg8bit" / split).glob("*/*_leftImg8bit.png")):
            stem = image.name[: -len("_leftImg8bit.png")]
            label = root / "gtFine" / split / image.parent.name / f"{stem}_gtFine_labelIds.png"
            if not label.is_file():
                raise ModelError(f"Cityscapes: {image} has no label {label}")
            pairs.append((image, label))
        _require(pairs, root, "Cityscapes", layout)
        super().__init__(pairs, size)

    def decode_label(self, label: Image.Image) -> np.ndarray:
        return _CITYSCAPES_LUT[np.asarray(label, np.uint8)]


class KittiRoad(_PairedImages):
    """KITTI Road training images with their road ground truth (1 road, 0 not, 255 invalid)."""

    num_classes = 2
    class_names = ("not road", "road")

    def __init__(self, root: str | Path, size: tuple[int, int] | None = None):
        root = Path(root)
        layout = f"{root}/training/image_2/*.png and {root}/training/gt_image_2/*_road_*.png"
        pairs = []
        for label in sorted((root / "training" / "gt_image_2").glob("*_road_*.png")):
            category, number = label.name.split("_road_")
            image = root / "training" / "image_2" / f"{category}_{number}"
            if not image.is_file():
                raise ModelError(f"KITTI Road: {label} has no image {image}")
            pairs.append((image, label))
        _require(pairs, root, "KITTI Road", layout)
        super().__init__(pairs, size)

    def decode_label(self, label: Image.Image) -> np.ndarray:
        rgb = np.asarray(label.convert("RGB"), np.uint8)
        target = (rgb[..., 2] > 0).astype(np.uint8)
        target[rgb[..., 0] == 0] = IGNORE_INDEX
        return target


class ECSSD(_PairedImages):
    """ECSSD salient object detection: 1 salient, 0 background."""

    num_classes = 2
    class_names = ("background", "salient")

    def __init__(self, root: str | Path, size: tuple[int, int] | None = None):
        root = Path(root)
        layout = f"{root}/images/*.jpg and {root}/ground_truth_mask/*.png"
        pairs = []
        for image in sorted((root / "images").glob("*.jpg")):
            label = root / "ground_truth_mask" / f"{image.stem}.png"
            if not label.is_file():
                raise ModelError(f"ECSSD: {image} has no mask {label}")
            pairs.append((image, label))
        _require(pairs, root, "ECSSD", layout)
        super().__init__(pairs, size)

    def decode_label(self, label: Image.Image) -> np.ndarray:
        return (np.asarray(label.convert("L"), np.uint8) > 127).astype(np.uint8)
