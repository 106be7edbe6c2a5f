"""The synthetic data set (determinism, classes, context, thin lines) and the on-disk loaders
(on tiny fake folder trees)."""

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from brevitas_models.data import synthetic
from brevitas_models.data.real import ECSSD, Cityscapes, KittiRoad
from brevitas_models.data.synthetic import SyntheticSegmentation, generate
from brevitas_models.errors import ModelError


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(a.tobytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes():
    a = _digest(*generate(6, 40, seed=3))
    assert a == _digest(*generate(6, 40, seed=3))
    assert a != _digest(*generate(6, 40, seed=4))
    assert a != _digest(*generate(6, 40, seed=3, split="val"))


def test_sample_does_not_depend_on_how_many_are_generated():
    few_images, few_labels = generate(3, 32, 48, seed=1)
    many_images, many_labels = generate(8, 32, 48, seed=1)
    assert np.array_equal(few_images, many_images[:3]) and np.array_equal(few_labels, many_labels[:3])
    assert few_images.shape == (3, 32, 48, 3) and few_images.dtype == np.uint8


def test_every_class_occurs_and_inner_patches_sit_in_rings():
    images, labels = generate(40, 64, seed=0)
    assert set(np.unique(labels)) == set(range(synthetic.NUM_CLASSES))
    for label in labels:
        if (label == synthetic.INNER).any():
            assert (label == synthetic.RING).any()


def test_blob_and_inner_pixels_look_the_same():
    """Class 1 and class 4 can only be told apart by context: same colour statistics."""
    images, labels = generate(60, 64, seed=0)
    blob = images[labels == synthetic.BLOB].astype(np.float64)
    inner = images[labels == synthetic.INNER].astype(np.float64)
    assert np.abs(blob.mean(0) - inner.mean(0)).max() < 4.0  # of 255
    assert np.abs(blob.std(0) - inner.std(0)).max() < 4.0


def test_lines_are_one_or_two_pixels_wide():
    for seed in range(20):
        label = np.zeros((64, 64), np.uint8)
        image = np.zeros((64, 64, 3))
        synthetic._draw_line(np.random.default_rng(seed), image, label)
        line = label == synthetic.LINE
        assert line.sum() > 30
        # no pixel has a full 3x3 neighbourhood of line pixels
        core = np.ones((62, 62), bool)
        for dy in range(3):
            for dx in range(3):
                core &= line[dy : dy + 62, dx : dx + 62]
        assert core.sum() == 0, f"seed {seed}"


def test_dataset_items_are_pixel_over_255_and_int64_labels():
    ds = SyntheticSegmentation("val", length=4, size=(32, 40), seed=2)
    image, label = ds[1]
    assert image.shape == (3, 32, 40) and image.dtype == torch.float32
    assert label.shape == (32, 40) and label.dtype == torch.int64
    assert torch.equal(torch.round(image * 255).to(torch.uint8).permute(1, 2, 0), torch.from_numpy(ds.images[1]))
    assert torch.equal(image, torch.from_numpy(ds.images[1]).permute(2, 0, 1).float() / 255.0)


def test_synthetic_errors():
    with pytest.raises(ModelError, match="unknown split"):
        generate(1, 32, split="holdout")
    with pytest.raises(ModelError, match="at least 16x16"):
        generate(1, 8)


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_cityscapes_maps_label_ids_to_train_ids(tmp_path):
    image = np.full((4, 6, 3), 100, np.uint8)
    label_ids = np.array([[7, 8, 26, 33, 0, 1]] * 4, np.uint8)
    _png(tmp_path / "leftImg8bit/val/aachen/aachen_000000_000019_leftImg8bit.png", image)
    _png(tmp_path / "gtFine/val/aachen/aachen_000000_000019_gtFine_labelIds.png", label_ids)
    ds = Cityscapes(tmp_path, "val")
    assert len(ds) == 1 and ds.num_classes == 19
    x, y = ds[0]
    assert x.shape == (3, 4, 6)
    assert torch.all(x == 100 / 255.0)
    assert y[0].tolist() == [0, 1, 13, 18, 255, 255]
    resized = Cityscapes(tmp_path, "val", size=(2, 3))
    assert resized[0][1].shape == (2, 3)


def test_kitti_road_magenta_is_road_black_is_ignored(tmp_path):
    gt = np.zeros((2, 3, 3), np.uint8)
    gt[0, 0] = (255, 0, 255)
    gt[0, 1] = (255, 0, 0)
    gt[1, 2] = (255, 0, 255)
    _png(tmp_path / "training/image_2/um_000007.png", np.zeros((2, 3, 3), np.uint8))
    _png(tmp_path / "training/gt_image_2/um_road_000007.png", gt)
    x, y = KittiRoad(tmp_path)[0]
    assert y.tolist() == [[1, 0, 255], [255, 255, 1]]


def test_ecssd_binary_saliency(tmp_path):
    (tmp_path / "images").mkdir()
    Image.fromarray(np.full((3, 3, 3), 50, np.uint8)).save(tmp_path / "images/0001.jpg")
    _png(tmp_path / "ground_truth_mask/0001.png", np.array([[0, 255, 128], [127, 0, 0], [0, 0, 255]], np.uint8))
    x, y = ECSSD(tmp_path)[0]
    assert x.shape == (3, 3, 3)
    assert y.tolist() == [[0, 1, 1], [0, 0, 0], [0, 0, 1]]


@pytest.mark.parametrize(
    "loader, expected",
    [
        (lambda root: Cityscapes(root, "train"), "leftImg8bit/train/<city>/*_leftImg8bit.png"),
        (KittiRoad, "training/gt_image_2/*_road_*.png"),
        (ECSSD, "ground_truth_mask/*.png"),
    ],
)
def test_missing_dataset_is_one_line_naming_the_layout(tmp_path, loader, expected):
    with pytest.raises(ModelError) as info:
        loader(tmp_path / "nowhere")
    message = str(info.value)
    assert expected in message and "\n" not in message
