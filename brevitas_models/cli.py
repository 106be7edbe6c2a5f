"""``python -m brevitas_models`` (console script ``bnn-models``): train, evaluate, export and
count the operations of the paper-scale networks (``brevitas_models.configs``).

Every bad input (unknown configuration, data root in the wrong layout, a checkpoint of
another network, a size the network cannot take) prints one ``error:`` line and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import torch

from brevitas_models.configs import CONFIGS, build_config, get_config
from brevitas_models.errors import ModelError
from brevitas_models.evaluation import evaluate_dataset, format_metrics, open_dataset
from brevitas_models.train import class_weights, load_checkpoint, save_checkpoint
from brevitas_models.trainer import SCHEDULES, FitOptions, distributed, fit, init_from_twin

CONFIG_HELP = f"configuration: {', '.join(CONFIGS)}"


def load_config_model(path: str | Path, config: str | None = None) -> tuple[torch.nn.Module, dict]:
    """The network a ``train`` checkpoint holds, with its weights (eval mode). ``config``:
    the configuration it must be."""
    state, meta = load_checkpoint(path)
    if "config" not in meta:
        raise ModelError(f"checkpoint {path} holds network {meta['name']!r}, not one of the "
                         f"configurations ({', '.join(CONFIGS)})")
    if config is not None and meta["config"] != config:
        raise ModelError(f"checkpoint {path} holds {meta['name']!r}, not configuration {config!r}")
    model = build_config(meta["config"], binary=meta["binary"])
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelError(f"checkpoint {path} does not fit network {meta['name']!r}: {first[:160]}") from None
    return model.eval(), meta


def _train(args: argparse.Namespace) -> int:
    config = get_config(args.config)
    torch.set_num_threads(args.threads)
    rank, _, _ = distributed()
    dataset_name = config.dataset if args.data_root else "synthetic"
    train_set = open_dataset(config.dataset, args.data_root, "train", config.size,
                             config.num_classes, args.train_size, args.data_seed)
    torch.manual_seed(args.seed)
    model = build_config(args.config, binary=not args.twin)
    teacher = None
    for option, path in (("--distill", args.distill), ("--init-from", args.init_from)):
        if path is None:
            continue
        twin, _ = load_config_model(path, args.config)
        if getattr(twin, "binary", True) or args.twin:
            raise ModelError(f"{option} {path}: takes the trained full-precision twin (train it "
                             "with --twin) for a binary network")
        if option == "--distill":
            teacher = twin
        else:
            with torch.no_grad():  # Brevitas sets its weight scales in a first forward
                model.eval()(train_set[0][0][None])
            init_from_twin(model, twin)
    labels = getattr(train_set, "labels", None)
    weights = (class_weights(labels, config.num_classes, 0.5)
               if labels is not None and config.num_classes > 2 else None)
    out = Path(args.out or f"runs/{args.config}{'_fp' if args.twin else ''}")
    options = FitOptions(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                         amp=not args.no_amp, checkpoint_every=args.checkpoint_every,
                         out=str(out), resume=args.resume, stop_at=args.stop_at,
                         distill_weight=args.distill_weight if teacher is not None else 0.0,
                         distill_temperature=args.distill_temperature,
                         distill_schedule=args.distill_schedule)
    start = time.perf_counter()
    result = fit(model, train_set, options, weights=weights, teacher=teacher)
    if rank != 0:
        return 0
    meta = {"name": model.name, "config": args.config, "binary": not args.twin,
            "width": config.width, "num_classes": config.num_classes, "dataset": dataset_name,
            "fit": asdict(options), "distill_from": args.distill, "init_from": args.init_from, "steps_done": result.step,
            "world_size": result.world_size, "ranks_in_step": result.ranks_in_step,
            "train_seconds": time.perf_counter() - start}
    if result.stopped:
        print(f"stopped at step {result.step} of {args.steps}; continue with --resume "
              f"(state in {out / 'last.pt'})")
        return 0
    if not args.no_eval:
        val = open_dataset(config.dataset, args.data_root, "val", config.size,
                           config.num_classes, args.val_size, args.data_seed)
        meta["val"] = evaluate_dataset(model, config.dataset if args.data_root else "synthetic",
                                       val, config.num_classes)
        print(format_metrics(config.dataset if args.data_root else "synthetic", meta["val"]))
    path = save_checkpoint(out / f"{model.name.replace(':', '_')}.pt", model.cpu(), meta)
    print(f"checkpoint: {path}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    model, meta = load_config_model(args.checkpoint, args.config)
    config = get_config(meta["config"])
    name = config.dataset if args.data_root else "synthetic"
    data = open_dataset(config.dataset, args.data_root, args.split, config.size,
                        config.num_classes, args.val_size, args.data_seed)
    metrics = evaluate_dataset(model, name, data, config.num_classes, progress=True)
    print(f"{meta['name']} on {name} ({args.split}, {len(data)} images)")
    print(format_metrics(name, metrics))
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=1))
    return 0


def _export(args: argparse.Namespace) -> int:
    from brevitas_models.export import export_qonnx

    if (args.checkpoint is None) == (args.net is None):
        raise ModelError("export: give a CHECKPOINT or --net NAME (random weights), not both")
    if args.checkpoint:
        model, meta = load_config_model(args.checkpoint)
        if not meta["binary"]:
            raise ModelError(f"export: {args.checkpoint} holds the full-precision twin; export "
                             "the binary network")
    else:
        torch.manual_seed(args.seed)
        model = build_config(args.net).eval()
    size = tuple(args.size) if args.size else model.input_size
    model.check_input(size)
    x = torch.randint(0, 256, (1, 3, *size), generator=torch.Generator().manual_seed(0)) / 255.0
    path = export_qonnx(model, x, args.output)
    print(f"wrote {path} ({model.name}, input 1x3x{size[0]}x{size[1]} UINT8 pixels)")
    return 0


def _opcount(args: argparse.Namespace) -> int:
    from brevitas_models.opcount import count_ops

    torch.set_num_threads(args.threads)
    if args.readme:
        from brevitas_models.opcount_table import write

        print(write(Path(args.readme)))
        return 0
    if args.config is None:
        raise ModelError("opcount: give --config NAME (or --readme FILE for all three tables)")
    model = build_config(args.config)
    size = tuple(args.size) if args.size else model.input_size
    model.check_input(size)
    report = count_ops(model, size)
    print(report.table(args.markdown))
    print(f"\nspeedup against the full-precision twin: {report.speedup:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=1))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bnn-models", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a configuration (synthetic data without --data-root)",
                       description="Train on one CPU, one GPU, or under torchrun on many "
                                   "(DistributedDataParallel; --batch-size is per process).")
    t.add_argument("--config", required=True, help=CONFIG_HELP)
    t.add_argument("--data-root", help="the data set on disk, in its own layout (default: synthetic)")
    t.add_argument("--out", help="output folder (default runs/<config>[_fp])")
    t.add_argument("--steps", type=int, default=300, help="optimizer steps (300)")
    t.add_argument("--batch-size", type=int, default=8, help="per process (8)")
    t.add_argument("--lr", type=float, default=5e-3, help="Adam, cosine decay (5e-3)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--twin", action="store_true", help="train the full-precision twin")
    t.add_argument("--init-from", metavar="TWIN_CHECKPOINT",
                   help="start from this trained twin's weights (two-stage training)")
    t.add_argument("--distill", metavar="TWIN_CHECKPOINT",
                   help="distil from this trained twin (its soft outputs as a second target)")
    t.add_argument("--distill-weight", type=float, default=0.5, help="w of the KL term (0.5)")
    t.add_argument("--distill-temperature", type=float, default=2.0, help="T (2)")
    t.add_argument("--distill-schedule", choices=SCHEDULES, default="constant",
                   help="w constant, or decaying linearly to 0")
    t.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    t.add_argument("--stop-at", type=int, help="stop after this step (state kept for --resume)")
    t.add_argument("--checkpoint-every", type=int, default=100, help="steps between resume states")
    t.add_argument("--no-amp", action="store_true", help="no mixed precision on GPU")
    t.add_argument("--no-eval", action="store_true", help="skip the validation after training")
    t.set_defaults(run=_train)

    e = sub.add_parser("evaluate", help="the data set's own metrics for a checkpoint")
    e.add_argument("checkpoint")
    e.add_argument("--data-root", help="the data set on disk (default: synthetic)")
    e.add_argument("--config", help="refuse a checkpoint of another configuration")
    e.add_argument("--split", default="val")
    e.add_argument("--json", help="also write the metrics as JSON")
    e.set_defaults(run=_evaluate)

    x = sub.add_parser("export", help="QONNX for hw-gen, from a checkpoint or random weights")
    x.add_argument("checkpoint", nargs="?")
    x.add_argument("--net", help=f"random weights of this {CONFIG_HELP}")
    x.add_argument("--size", nargs=2, type=int, metavar=("H", "W"), help="input size (default: the config's)")
    x.add_argument("-o", "--output", required=True, metavar="FILE.onnx")
    x.add_argument("--seed", type=int, default=0)
    x.set_defaults(run=_export)

    o = sub.add_parser("opcount", help="BOPs, FLOPs, OPs per module and the speedup over the twin")
    o.add_argument("--config", help=CONFIG_HELP)
    o.add_argument("--readme", metavar="FILE", help="write the tables of seg-r18-cityscapes, "
                   "road-r18-kitti and sod-r18-ecssd into FILE's opcount-table section")
    o.add_argument("--size", nargs=2, type=int, metavar=("H", "W"))
    o.add_argument("--markdown", action="store_true")
    o.add_argument("--json")
    o.set_defaults(run=_opcount)
    for s in (t, e, o):
        s.add_argument("--threads", type=int, default=2, help="CPU threads (2)")
    for s in (t, e):
        s.add_argument("--train-size" if s is t else "--data-seed", **(
            {"type": int, "default": 600, "help": "synthetic training images (600)"} if s is t
            else {"type": int, "default": 0, "help": "synthetic data seed"}))
    t.add_argument("--data-seed", type=int, default=0, help="synthetic data seed")
    for s in (t, e):
        s.add_argument("--val-size", type=int, default=200, help="synthetic validation images (200)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
