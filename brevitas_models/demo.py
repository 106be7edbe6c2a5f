"""The model side of ``make demo``: train (or reuse) the binary demo network, its
full-precision twin and the per-pixel baseline on the synthetic set, evaluate all three on the
val split, and draw input / label / predictions side by side.

``prepare(out_dir)`` -> ``(binary model, its checkpoint path, metrics dict)``; it writes
``out_dir/<name>_w<width>.pt`` (three checkpoints), ``out_dir/demo_metrics.json`` and
``out_dir/demo_predictions.png``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from brevitas_models.data.synthetic import CLASS_NAMES, NUM_CLASSES
from brevitas_models.train import TrainConfig, evaluate, synthetic_splits, train_or_load

DEMO_NETWORKS = ("demo", "demo_fp", "pixel_baseline")
# One RGB colour per synthetic class, in class order; 255 (ignore) is drawn white.
PALETTE = np.array(
    [[40, 40, 40], [255, 140, 20], [30, 220, 230], [160, 60, 220], [250, 230, 40], [70, 200, 70]],
    np.uint8,
)
IGNORE_COLOUR = np.array([255, 255, 255], np.uint8)
PREVIEW_SAMPLES = 4


def colorize(labels: np.ndarray) -> np.ndarray:
    """H x W class map -> H x W x 3 ``uint8`` image with ``PALETTE``."""
    out = np.empty((*labels.shape, 3), np.uint8)
    out[:] = IGNORE_COLOUR
    known = labels < len(PALETTE)
    out[known] = PALETTE[labels[known]]
    return out


def _predict(model: nn.Module, images: torch.Tensor) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return model(images).argmax(1).numpy()


def save_predictions_png(
    path: str | Path, images: torch.Tensor, labels: torch.Tensor, predictions: dict[str, np.ndarray]
) -> Path:
    """One row per sample: input, label, then one column per named prediction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = ["input", "label", *predictions]
    fig, axes = plt.subplots(len(images), len(columns), figsize=(2 * len(columns), 2 * len(images)), squeeze=False)
    for row in range(len(images)):
        panels = [
            images[row].permute(1, 2, 0).numpy(),
            colorize(labels[row].numpy()),
            *(colorize(p[row]) for p in predictions.values()),
        ]
        for col, panel in enumerate(panels):
            axes[row, col].imshow(panel, interpolation="nearest")
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
            if row == 0:
                axes[row, col].set_title(columns[col], fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=PALETTE[i] / 255) for i in range(NUM_CLASSES)]
    fig.legend(handles, CLASS_NAMES, loc="lower center", ncol=NUM_CLASSES, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def prepare(
    out_dir: str | Path,
    config: TrainConfig = TrainConfig(),
    widths: dict[str, int] | None = None,
    *,
    progress: bool = True,
) -> tuple[nn.Module, Path, dict[str, Any]]:
    """Train or reuse the three demo networks in ``out_dir``; returns the binary ``demo`` model,
    its checkpoint and the metrics of all three (val mIoU, pixel accuracy, IoU per class,
    training seconds; ``binary_over_fp`` = binary mIoU / full-precision mIoU)."""
    out_dir = Path(out_dir)
    widths = widths or {}
    _, val_set = synthetic_splits(config)
    results = {name: train_or_load(name, widths.get(name), out_dir, config, progress=progress) for name in DEMO_NETWORKS}
    metrics: dict[str, Any] = {"classes": list(CLASS_NAMES), "val_samples": len(val_set)}
    for name, result in results.items():
        metrics[name] = {
            **evaluate(result.model, val_set, NUM_CLASSES),
            "width": result.meta["width"],
            "train_seconds": result.meta.get("train_seconds"),
            "checkpoint": str(result.checkpoint),
        }
    metrics["binary_over_fp"] = metrics["demo"]["miou"] / metrics["demo_fp"]["miou"]
    (out_dir / "demo_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    samples = [val_set[i] for i in range(min(PREVIEW_SAMPLES, len(val_set)))]
    images = torch.stack([s[0] for s in samples])
    labels = torch.stack([s[1] for s in samples])
    predictions = {name: _predict(r.model, images) for name, r in results.items()}
    save_predictions_png(out_dir / "demo_predictions.png", images, labels, predictions)
    return results["demo"].model, results["demo"].checkpoint, metrics
