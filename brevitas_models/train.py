"""Training, evaluation and checkpoints.

A checkpoint is ``torch.save`` of ``{"format": CHECKPOINT_FORMAT, "meta": {...}, "state_dict":
{...}}``, read back with ``torch.load(..., weights_only=True)``. ``meta`` holds the network
name, width, number of classes, the training configuration (data seed, epochs, ...) and the
validation metrics measured after training. Every failure to read one is a ``ModelError`` with
one line naming the file and what is wrong.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from brevitas_models.data.common import IGNORE_INDEX
from brevitas_models.data.synthetic import NUM_CLASSES, SyntheticSegmentation
from brevitas_models.errors import ModelError
from brevitas_models.metrics import ConfusionMatrix
from brevitas_models.nets import DEFAULT_WIDTHS, build

CHECKPOINT_FORMAT = "brevitas_models.checkpoint/1"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model (besides network name and width)."""

    epochs: int = 4
    batch_size: int = 8
    lr: float = 5e-3
    train_size: int = 600
    val_size: int = 200
    image_size: int = 64
    data_seed: int = 0
    seed: int = 0
    threads: int = 2
    # Cross-entropy class weights ~ frequency**-power (0: unweighted); mIoU weighs every class
    # equally while background covers ~80 % of the synthetic pixels.
    class_weight_power: float = 0.5


def seed_everything(seed: int, threads: int) -> None:
    """Seed torch and numpy and fix the number of CPU threads (results depend on it)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(threads)


def synthetic_splits(config: TrainConfig) -> tuple[SyntheticSegmentation, SyntheticSegmentation]:
    """The synthetic train and val splits that ``config`` describes."""
    kwargs = {"size": config.image_size, "seed": config.data_seed}
    return (
        SyntheticSegmentation("train", config.train_size, **kwargs),
        SyntheticSegmentation("val", config.val_size, **kwargs),
    )


def class_weights(labels: np.ndarray, num_classes: int, power: float) -> torch.Tensor:
    """Per-class loss weights ``frequency**-power`` over ``labels`` (ignore index skipped),
    scaled so that the mean weight per labelled pixel is 1; absent classes get weight 0."""
    counts = np.bincount(labels[labels != IGNORE_INDEX].ravel(), minlength=num_classes)[:num_classes]
    freq = counts / max(1, counts.sum())
    weights = np.where(freq > 0, np.power(np.maximum(freq, 1e-12), -power), 0.0)
    weights /= max(1e-12, float((weights * freq).sum()))
    return torch.tensor(weights, dtype=torch.float32)


def train_model(
    model: nn.Module,
    dataset: Dataset,
    config: TrainConfig,
    *,
    steps: int | None = None,
    weights: torch.Tensor | None = None,
    progress: bool = True,
) -> list[float]:
    """Train with Adam and a cosine learning-rate decay, cross entropy (class ``weights``)
    ignoring label 255. ``steps`` caps the number of optimizer steps; returns every step's loss."""
    seed_everything(config.seed, config.threads)
    generator = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, generator=generator, drop_last=True)
    total = config.epochs * len(loader) if steps is None else steps
    if total <= 0:
        raise ModelError(f"training: nothing to do ({len(dataset)} samples, batch {config.batch_size})")
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    )
    losses: list[float] = []
    model.train()
    name = getattr(model, "name", type(model).__name__)
    with tqdm(total=total, desc=f"train {name}", unit="step", disable=not progress) as bar:
        while len(losses) < total:
            for images, labels in loader:
                loss = F.cross_entropy(model(images), labels, weight=weights, ignore_index=IGNORE_INDEX)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
                if len(losses) >= total:
                    break
    model.eval()
    return losses


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, num_classes: int, batch_size: int = 32) -> dict[str, Any]:
    """mIoU, pixel accuracy and per-class IoU of ``model`` (in eval mode) on ``dataset``."""
    model.eval()
    matrix = ConfusionMatrix(num_classes)
    for images, labels in DataLoader(dataset, batch_size=batch_size):
        matrix.update(model(images).argmax(1), labels)
    return {
        "miou": matrix.miou(),
        "pixel_accuracy": matrix.pixel_accuracy(),
        "iou": [None if math.isnan(v) else float(v) for v in matrix.iou()],
    }


def save_checkpoint(path: str | Path, model: nn.Module, meta: dict[str, Any]) -> Path:
    """Write ``model``'s state dict and ``meta`` (plain str/int/float/list/dict values)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format": CHECKPOINT_FORMAT, "meta": meta, "state_dict": state}, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path, name: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint; returns (state dict, meta). ``name``: the network it must hold."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes the unpickler raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"checkpoint {path} is not a readable torch file ({reason[:120]})") from None
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"checkpoint {path} is not a {CHECKPOINT_FORMAT} file")
    meta, state = blob.get("meta"), blob.get("state_dict")
    if not isinstance(meta, dict) or not isinstance(state, dict) or "name" not in meta:
        raise ModelError(f"checkpoint {path} lacks its metadata or state dict")
    if name is not None and meta["name"] != name:
        raise ModelError(f"checkpoint {path} holds network {meta['name']!r}, not {name!r}")
    return state, meta


def load_model(path: str | Path, name: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Build the network a checkpoint describes and load its weights (eval mode)."""
    state, meta = load_checkpoint(path, name)
    model = build(meta["name"], meta.get("width"), meta.get("num_classes", NUM_CLASSES))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelError(f"checkpoint {path} does not fit network {meta['name']!r}: {first[:160]}") from None
    model.eval()
    return model, meta


@dataclass
class TrainResult:
    """What ``train_or_load`` returns."""

    model: nn.Module
    checkpoint: Path
    meta: dict[str, Any]
    trained: bool  # False: reused an existing checkpoint


def checkpoint_path(out_dir: str | Path, name: str, width: int) -> Path:
    return Path(out_dir) / f"{name}_w{width}.pt"


def _wanted_meta(name: str, width: int, num_classes: int, config: TrainConfig) -> dict[str, Any]:
    return {"name": name, "width": width, "num_classes": num_classes, **asdict(config)}


def train_or_load(
    name: str,
    width: int | None,
    out_dir: str | Path,
    config: TrainConfig = TrainConfig(),
    *,
    progress: bool = True,
) -> TrainResult:
    """Reuse ``out_dir/<name>_w<width>.pt`` if its metadata matches (network, width, classes
    and every ``config`` field); otherwise train on the synthetic set, evaluate on its val
    split, and write the checkpoint. A file there that cannot be read is an error, not
    overwritten."""
    width = DEFAULT_WIDTHS.get(name, 0) if width is None else width
    seed_everything(config.seed, config.threads)  # the initial weights depend on the seed too
    model = build(name, width, NUM_CLASSES, (config.image_size, config.image_size))
    path = checkpoint_path(out_dir, name, width)
    wanted = _wanted_meta(name, width, NUM_CLASSES, config)
    if path.exists():
        state, meta = load_checkpoint(path, name)
        if all(meta.get(k) == v for k, v in wanted.items()):
            model.load_state_dict(state)
            model.eval()
            return TrainResult(model, path, meta, trained=False)
    train_set, val_set = synthetic_splits(config)
    start = time.perf_counter()
    weights = class_weights(train_set.labels, NUM_CLASSES, config.class_weight_power)
    losses = train_model(model, train_set, config, weights=weights, progress=progress)
    seconds = time.perf_counter() - start
    metrics = evaluate(model, val_set, NUM_CLASSES)
    meta = {**wanted, "train_seconds": seconds, "final_loss": losses[-1], "val": metrics}
    save_checkpoint(path, model, meta)
    return TrainResult(model, path, meta, trained=True)
