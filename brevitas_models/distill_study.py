"""Distillation on the demo budget: ``python -m brevitas_models.distill_study --out DIR``.

For each seed: the full-precision twin (``demo_fp``, stage one), then the binary demo network
(stage two) without and with distillation from that twin, each from random weights or
initialised from the twin's (``--variants``). Distillation (``trainer.fit``): the twin's soft
outputs as a second target, weight ``w`` decaying linearly to 0, temperature ``T``. All on ``TrainConfig()``'s data and budget (300
steps of batch 8, 600 synthetic images of 64x64, Adam 5e-3 cosine, class-weighted cross
entropy). Writes ``DIR/distill.json`` (mIoU per seed and variant, ratio to the twin).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from brevitas_models.data.synthetic import NUM_CLASSES
from brevitas_models.nets import build
from brevitas_models.train import TrainConfig, class_weights, evaluate, synthetic_splits
from brevitas_models.trainer import FitOptions, fit, init_from_twin


VARIANTS = ("binary", "distilled", "twin_init", "twin_init_distilled")


def run(out: Path, seeds: list[int], weight: float, temperature: float, schedule: str,
        variants: tuple[str, ...] = VARIANTS[:2], student_lr: float | None = None) -> dict:
    config = TrainConfig()
    torch.set_num_threads(config.threads)
    train_set, val_set = synthetic_splits(config)
    weights = class_weights(train_set.labels, NUM_CLASSES, config.class_weight_power)
    steps = config.epochs * (config.train_size // config.batch_size)
    results: dict = {"student_lr": student_lr, "weight": weight, "temperature": temperature, "schedule": schedule,
                     "steps": steps, "seeds": {}}
    for seed in seeds:
        row = {}
        options = FitOptions(steps=steps, batch_size=config.batch_size, lr=config.lr, seed=seed,
                             checkpoint_every=0, progress=False)
        torch.manual_seed(seed)
        twin = build("demo_fp")
        fit(twin, train_set, options, weights=weights)
        row["twin"] = evaluate(twin, val_set, NUM_CLASSES)["miou"]
        for name in variants:
            w = weight if name.endswith("distilled") else 0.0
            torch.manual_seed(seed)
            student = build("demo")
            if name.startswith("twin_init"):
                with torch.no_grad():  # Brevitas sets its weight scales in a first forward
                    student.eval()(train_set[0][0][None])
                init_from_twin(student, twin)
            lr = options.lr if student_lr is None else student_lr
            fit(student, train_set, FitOptions(**{**options.__dict__, "distill_weight": w, "lr": lr,
                                                  "distill_temperature": temperature,
                                                  "distill_schedule": schedule}),
                weights=weights, teacher=twin if w else None)
            row[name] = evaluate(student, val_set, NUM_CLASSES)["miou"]
        results["seeds"][seed] = row
        print(seed, {k: round(v, 3) for k, v in row.items()}, flush=True)
        out.mkdir(parents=True, exist_ok=True)
        (out / "distill.json").write_text(json.dumps(results, indent=1))
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="distill_out")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--weight", type=float, default=0.5)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--schedule", default="decay")
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS[:2]))
    p.add_argument("--student-lr", type=float, help="the binary network's learning rate "
                   "(default: TrainConfig's)")
    a = p.parse_args()
    run(Path(a.out), a.seeds, a.weight, a.temperature, a.schedule, tuple(a.variants), a.student_lr)


if __name__ == "__main__":
    main()
