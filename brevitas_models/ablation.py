"""The ablation the paper implies: which block helps, at what cost.

Seven variants of the demo encoder-decoder (``nets.EncoderDecoder``, width 16), each trained
with the same budget (``ABLATION_CONFIG``) on the synthetic set for several seeds (the seed of
the initial weights and of the batch order; the data are the same):

``plain``       binary, dec0 = nearest x2 + one binary conv (``mbu=False``), no attention
``mbu1``        binary, MBU with K = 1 (dilation 1), no attention
``mbu4``        binary, MBU with K = 4 (dilations 1-4), no attention
``*+att``       the same with binary axial attention at H/8 (``mbu4+att`` is ``demo``)
``fp``          the full-precision twin (``demo_fp``: float MBU K = 4, no attention)

Per variant: mIoU on the val split (mean, std, min, max over seeds), OPs, BOPs, FLOPs at the
training input size and the speedup against ``fp`` (:mod:`brevitas_models.opcount`),
parameters and weight memory in bits (``opcount.weight_memory``). Written to
``<out>/ablation.json`` and ``<out>/ablation.md`` (deterministic: no timings); checkpoints in
``<out>/seed<k>/`` are reused when their configuration matches (``train.train_or_load``).

``ABLATION_CONFIG`` (smaller than ``TrainConfig()``, which ``make demo`` uses): 32 x 32 images,
600 training images, 4 epochs, batch 8 (300 steps), lr 5e-3 with cosine decay, class weights
frequency^-0.5, 2 threads; every field is pinned here. Measured: 7 variants x 3 seeds in 19
minutes on two shared cores (load about 6).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Sequence

from brevitas_models.data.synthetic import NUM_CLASSES
from brevitas_models.errors import ModelError
from brevitas_models.nets import NETWORKS, EncoderDecoder, register
from brevitas_models.opcount import count_ops, format_table, weight_memory
from brevitas_models.train import TrainConfig, train_or_load

WIDTH = 16
# every field pinned: tuning TrainConfig's defaults (make demo) does not change the ablation
ABLATION_CONFIG = TrainConfig(epochs=4, batch_size=8, lr=5e-3, train_size=600, val_size=200,
                              image_size=32, data_seed=0, seed=0, threads=2,
                              class_weight_power=0.5)
# variant -> EncoderDecoder keyword arguments
VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {"binary": True, "mbu": False},
    "plain+att": {"binary": True, "mbu": False, "attention": "axial"},
    "mbu1": {"binary": True, "mbu_branches": 1},
    "mbu1+att": {"binary": True, "mbu_branches": 1, "attention": "axial"},
    "mbu4": {"binary": True, "mbu_branches": 4},
    "mbu4+att": {"binary": True, "mbu_branches": 4, "attention": "axial"},
    "fp": {"binary": False, "mbu_branches": 4},
}
TWIN = "fp"


def network_name(variant: str) -> str:
    return f"ablation_{variant.replace('+', '_')}"


def register_variants() -> None:
    """Register every variant in the network registry (once), so that checkpoints name it."""
    for variant, kwargs in VARIANTS.items():
        if network_name(variant) not in NETWORKS:
            register(network_name(variant),
                     lambda width, classes, kw=kwargs: EncoderDecoder(width, classes, **kw), WIDTH)


def _spread(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def run(out_dir: str | Path, seeds: Sequence[int] = (0, 1, 2),
        variants: Sequence[str] = tuple(VARIANTS), config: TrainConfig = ABLATION_CONFIG,
        progress: bool = True) -> dict[str, Any]:
    """Train (or reuse) every variant for every seed, count, summarize, write JSON and
    Markdown into ``out_dir``; returns the JSON document."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ModelError(f"ablation: unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    if not seeds:
        raise ModelError("ablation: needs at least one seed")
    if config.image_size < 16 or config.image_size % 8:
        raise ModelError(f"ablation: image size {config.image_size} must be a multiple of 8, "
                         "at least 16 (the encoder-decoder's three x2 stages, MBU dilation 4)")
    register_variants()
    out_dir = Path(out_dir)
    size = (config.image_size, config.image_size)
    results: dict[str, Any] = {}
    for variant in variants:
        runs = []
        for seed in seeds:
            if progress:
                print(f"ablation: {variant}, seed {seed}", file=sys.stderr, flush=True)
            result = train_or_load(network_name(variant), WIDTH, out_dir / f"seed{seed}",
                                   replace(config, seed=seed), progress=progress)
            runs.append({"seed": seed, "miou": result.meta["val"]["miou"],
                         "pixel_accuracy": result.meta["val"]["pixel_accuracy"]})
        report = count_ops(result.model, size)
        results[variant] = {
            "network": {"width": WIDTH, **VARIANTS[variant]},
            "runs": runs,
            "miou": _spread([r["miou"] for r in runs]),
            "bops": report.total.bops, "flops": report.total.flops, "ops": report.total.ops,
            **weight_memory(result.model),
        }
    if TWIN in results:
        for entry in results.values():
            entry["speedup_vs_fp"] = results[TWIN]["ops"] / entry["ops"]
    document = {"config": asdict(config), "width": WIDTH, "size": list(size),
                "seeds": list(seeds), "variants": results}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "ablation.json").write_text(json.dumps(document, indent=1) + "\n")
    (out_dir / "ablation.md").write_text(markdown(document))
    return document


def markdown(document: dict[str, Any]) -> str:
    """The ablation table (one row per variant) with the budget it was trained with."""
    c = document["config"]
    header = ["variant", "mIoU mean", "std", "min", "max", "OPs", "BOPs", "FLOPs", "fp / OPs",
              "params", "weight bits"]
    body = []
    for variant, e in document["variants"].items():
        m = e["miou"]
        body.append([variant, f"{m['mean']:.4f}", f"{m['std']:.4f}", f"{m['min']:.4f}",
                     f"{m['max']:.4f}", f"{e['ops']:,.0f}", f"{e['bops']:,}", f"{e['flops']:,}",
                     f"{e['speedup_vs_fp']:.1f}x" if "speedup_vs_fp" in e else "-",
                     f"{e['params']:,}", f"{e['bits']:,}"])
    size = "x".join(map(str, document["size"]))
    intro = (f"Ablation on the synthetic set: width {document['width']}, {size} images, "
             f"{c['train_size']} train / {c['val_size']} val, {c['epochs']} epochs, batch "
             f"{c['batch_size']}, lr {c['lr']}, seeds {document['seeds']}; OPs = BOPs/64 + FLOPs "
             f"at {size}; mIoU on the val split.")
    return f"{intro}\n\n{format_table(header, body, markdown=True)}\n"


def main(argv: Sequence[str] | None = None) -> int:
    default = ABLATION_CONFIG
    parser = argparse.ArgumentParser(
        prog="python -m brevitas_models.ablation",
        description="Train the ablation variants (plain binary decoder, MBU K=1, K=4, each "
                    "with and without attention, the full-precision twin) with one budget for "
                    "several seeds; write mIoU, OPs, parameters, memory to JSON and Markdown.")
    parser.add_argument("--out", default="ablation_out", help="output folder (ablation_out)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS),
                        help=f"subset of: {', '.join(VARIANTS)}")
    parser.add_argument("--epochs", type=int, default=default.epochs)
    parser.add_argument("--train-size", type=int, default=default.train_size)
    parser.add_argument("--val-size", type=int, default=default.val_size)
    parser.add_argument("--image-size", type=int, default=default.image_size)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    config = replace(default, epochs=args.epochs, train_size=args.train_size,
                     val_size=args.val_size, image_size=args.image_size)
    try:
        document = run(args.out, args.seeds, args.variants, config, progress=not args.quiet)
    except (ModelError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(markdown(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
