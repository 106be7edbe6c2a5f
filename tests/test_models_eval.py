"""Evaluation on tiny fixtures in each data set's on-disk layout: ``bnn-models evaluate``
prints the numbers the field's libraries compute directly on the same predictions."""

from __future__ import annotations

import json

import numpy as np
import py_sod_metrics as sod
import pytest
import torch
from cityscapesscripts.helpers.labels import id2label
from PIL import Image

from brevitas_models.cli import main
from brevitas_models.configs import build_config
from brevitas_models.train import save_checkpoint


def _save(path, array, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, fmt)


def _checkpoint(tmp_path, config: str) -> tuple[torch.nn.Module, str]:
    torch.manual_seed(3)
    model = build_config(config).eval()
    with torch.no_grad():  # Brevitas saves the weight scales once a forward has set them
        model(torch.zeros(1, 3, *model.input_size))
    path = save_checkpoint(tmp_path / f"{config}.pt", model,
                           {"name": model.name, "config": config, "binary": True})
    return model, str(path)


def test_ecssd_metrics_equal_pysodmetrics(tmp_path, capsys):
    rng = np.random.default_rng(0)
    root = tmp_path / "ECSSD"
    for i in range(5):
        _save(root / "images" / f"{i + 1:04d}.jpg", rng.integers(0, 256, (64, 64, 3), np.uint8))
        mask = np.zeros((64, 64), np.uint8)
        mask[10 + i:40, 12:30 + 3 * i] = 255
        _save(root / "ground_truth_mask" / f"{i + 1:04d}.png", mask)
    model, ckpt = _checkpoint(tmp_path, "sod-r18-tiny")
    out = tmp_path / "m.json"
    assert main(["evaluate", ckpt, "--data-root", str(root), "--json", str(out), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    got = json.loads(out.read_text())
    # the library, directly: the validation split is the last fifth by name, image 0005
    image = np.asarray(Image.open(root / "images" / "0005.jpg").convert("RGB"))
    gt = np.asarray(Image.open(root / "ground_truth_mask" / "0005.png"))
    x = torch.from_numpy(image.transpose(2, 0, 1).copy()).float()[None] / 255.0
    with torch.no_grad():
        p = torch.softmax(model(x), 1)[0, 1].numpy()
    pred = np.round(p.astype(np.float64) * 255).astype(np.uint8)
    meters = {"mae": sod.MAE(), "fm": sod.Fmeasure(), "sm": sod.Smeasure(), "em": sod.Emeasure()}
    for m in meters.values():
        m.step(pred=pred, gt=gt)
    fm = meters["fm"].get_results()["fm"]["curve"]
    em = meters["em"].get_results()["em"]["curve"]
    expected = {"mae": meters["mae"].get_results()["mae"], "max_f": fm.max(), "mean_f": fm.mean(),
                "s_measure": meters["sm"].get_results()["sm"], "max_e": em.max(), "mean_e": em.mean()}
    for key, value in expected.items():
        assert got[key] == pytest.approx(float(value), rel=1e-12, abs=1e-12), key
    assert f"MAE                      {expected['mae']:.4f}" in printed
    assert f"S-measure                {expected['s_measure']:.4f}" in printed


def test_cityscapes_loader_uses_the_official_train_ids(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "cityscapes"
    ids = np.array([7, 8, 11, 26, 0, 24, 21, 23], np.uint8)  # 0: unlabeled, ignored
    labels = {}
    for city, name in (("frankfurt", "frankfurt_000000_000294"), ("lindau", "lindau_000000_000019")):
        _save(root / "leftImg8bit/val" / city / f"{name}_leftImg8bit.png",
              rng.integers(0, 256, (64, 64, 3), np.uint8))
        label = ids[rng.integers(0, len(ids), (64, 64))]
        _save(root / "gtFine/val" / city / f"{name}_gtFine_labelIds.png", label)
        labels[name] = (root / "leftImg8bit/val" / city / f"{name}_leftImg8bit.png", label)
    from brevitas_models.data.real import Cityscapes

    data = Cityscapes(root, "val")
    for (image_path, label), (_, target) in zip(sorted(labels.values()), data):
        expected = np.vectorize(lambda i: id2label[i].trainId if not id2label[i].ignoreInEval
                                else 255)(label)
        assert np.array_equal(target.numpy(), expected)
