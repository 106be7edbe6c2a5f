"""demo.prepare on a tiny configuration: checkpoints, metrics, the preview PNG, reuse."""

import json

import numpy as np
import torch
from PIL import Image

from brevitas_models.demo import PALETTE, colorize, prepare
from brevitas_models.train import TrainConfig, load_model

TINY = TrainConfig(epochs=1, batch_size=4, train_size=8, val_size=4, image_size=16, threads=1)
WIDTHS = {"demo": 2, "demo_fp": 2, "pixel_baseline": 2}


def test_prepare_trains_evaluates_draws_and_reuses(tmp_path):
    model, checkpoint, metrics = prepare(tmp_path, TINY, WIDTHS, progress=False)
    assert checkpoint == tmp_path / "demo_w2.pt"
    assert {"demo", "demo_fp", "pixel_baseline"} <= metrics.keys()
    for name in ("demo", "demo_fp", "pixel_baseline"):
        assert 0.0 <= metrics[name]["miou"] <= 1.0 and len(metrics[name]["iou"]) == 6
        assert (tmp_path / f"{name}_w2.pt").is_file()
    assert metrics["binary_over_fp"] == metrics["demo"]["miou"] / metrics["demo_fp"]["miou"]
    assert json.loads((tmp_path / "demo_metrics.json").read_text()) == metrics
    png = Image.open(tmp_path / "demo_predictions.png")
    assert png.size[0] > png.size[1] > 0
    before = checkpoint.stat().st_mtime_ns
    again, _, metrics_again = prepare(tmp_path, TINY, WIDTHS, progress=False)
    assert checkpoint.stat().st_mtime_ns == before
    assert metrics_again["demo"]["miou"] == metrics["demo"]["miou"]
    loaded, meta = load_model(checkpoint, "demo")
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x)) and torch.equal(again(x), model(x))


def test_colorize_uses_the_fixed_palette_and_white_for_ignore():
    out = colorize(np.array([[0, 5], [255, 2]]))
    assert out[0, 0].tolist() == PALETTE[0].tolist() and out[0, 1].tolist() == PALETTE[5].tolist()
    assert out[1, 0].tolist() == [255, 255, 255] and out[1, 1].tolist() == PALETTE[2].tolist()
