"""Distillation on the demo budget: ``python -m brevitas_models.distill_study --out DIR``.

For each seed: the full-precision twin (``demo_fp``, stage one), then the binary demo network
(stage two) without and with distillation from that twin, each from random weights or
initialised from the twin's (``--variants``). The binary network's run (``trainer.fit``) takes
its own learning rate (``--student-lr``; the recipe kept: twin start at 1e-2) and the
distillation terms: the twin's soft outputs as a second target (weight ``w`` constant or
decaying linearly to 0, temperature ``T``, optionally class-weighted per pixel) and attention
transfer from the twin's batch-norm outputs. All on ``TrainConfig()``'s data and budget (300
steps of batch 8, 600 synthetic images of 64x64, Adam cosine, class-weighted cross entropy).
Writes ``DIR/distill.json`` (mIoU per seed and variant).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from brevitas_models.data.synthetic import NUM_CLASSES
from brevitas_models.nets import build
from brevitas_models.train import TrainConfig, class_weights, evaluate, synthetic_splits
from brevitas_models.trainer import SCHEDULES, FitOptions, fit, init_from_twin


VARIANTS = ("binary", "distilled", "twin_init", "twin_init_distilled")


def run(out: Path, seeds: list[int], variants: tuple[str, ...] = VARIANTS[:2],
        student: dict[str, Any] | None = None) -> dict:
    """``student``: ``FitOptions`` fields of the binary network's run (learning rate, the
    distillation terms, label smoothing); the variants without distillation drop the
    distillation terms."""
    config = TrainConfig()
    torch.set_num_threads(config.threads)
    train_set, val_set = synthetic_splits(config)
    weights = class_weights(train_set.labels, NUM_CLASSES, config.class_weight_power)
    steps = config.epochs * (config.train_size // config.batch_size)
    student = student or {}
    results: dict = {**student, "steps": steps, "seeds": {}}
    for seed in seeds:
        row = {}
        options = FitOptions(steps=steps, batch_size=config.batch_size, lr=config.lr, seed=seed,
                             checkpoint_every=0, progress=False)
        torch.manual_seed(seed)
        twin = build("demo_fp")
        fit(twin, train_set, options, weights=weights)
        row["twin"] = evaluate(twin, val_set, NUM_CLASSES)["miou"]
        for name in variants:
            distilled = name.endswith("distilled")
            torch.manual_seed(seed)
            model = build("demo")
            if name.startswith("twin_init"):
                with torch.no_grad():  # Brevitas sets its weight scales in a first forward
                    model.eval()(train_set[0][0][None])
                init_from_twin(model, twin)
            fields = {**student, **({} if distilled else {"distill_weight": 0.0, "feature_weight": 0.0})}
            fit(model, train_set, dataclasses.replace(options, **fields), weights=weights,
                teacher=twin if distilled else None)
            row[name] = evaluate(model, val_set, NUM_CLASSES)["miou"]
        results["seeds"][seed] = row
        print(seed, {k: round(v, 3) for k, v in row.items()}, flush=True)
        out.mkdir(parents=True, exist_ok=True)
        (out / "distill.json").write_text(json.dumps(results, indent=1))
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="distill_out")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS[:2]))
    p.add_argument("--student-lr", type=float, default=TrainConfig().lr,
                   help="the binary network's learning rate (TrainConfig's; the kept recipe: 1e-2)")
    p.add_argument("--weight", type=float, default=0.5, help="w of the KL term (0.5)")
    p.add_argument("--temperature", type=float, default=1.0, help="T (1)")
    p.add_argument("--schedule", choices=SCHEDULES, default="decay", help="w constant or decaying")
    p.add_argument("--class-weighted", action="store_true",
                   help="weigh each pixel's KL by its label's class weight, as the cross entropy")
    p.add_argument("--feature-weight", type=float, default=0.0,
                   help="weight of attention transfer from the twin's batch-norm outputs (0)")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    a = p.parse_args()
    run(Path(a.out), a.seeds, tuple(a.variants),
        {"lr": a.student_lr, "distill_weight": a.weight, "distill_temperature": a.temperature,
         "distill_schedule": a.schedule, "distill_class_weighted": a.class_weighted,
         "feature_weight": a.feature_weight, "label_smoothing": a.label_smoothing})


if __name__ == "__main__":
    main()
