"""``python -m driver PACKAGE --input X.npy --output Y.npy [--backend sim] [--weights W.npz]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from driver.accelerator import BACKENDS, Accelerator
from driver.errors import DriverError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m driver",
        description="Run a deploy package's accelerator on uint8 images (N x H x W x C, .npy) "
        "and save what it returns: the per-pixel labels (N x H x W) where the accelerator "
        "computes them, else the model's float logits from its integer scores.")
    p.add_argument("package", type=Path, help="deploy package folder (made by hw-gen deploy)")
    p.add_argument("--input", type=Path, required=True, metavar="X.npy", help="uint8 images")
    p.add_argument("--output", type=Path, required=True, metavar="Y.npy", help="result")
    p.add_argument("--backend", choices=BACKENDS, default="pynq",
                   help="pynq (on the board, default) or sim (the same bytes through sim/)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to wait for the output DMA before giving up (default 10)")
    p.add_argument("--weights", type=Path, default=None, metavar="WEIGHTS.npz",
                   help="a retrained model's weights (hw-gen weights) to load first; the "
                   "package must be built with --runtime-weights")
    args = p.parse_args(argv)
    try:
        if not args.input.exists():
            raise DriverError(f"{args.input}: input file not found")
        try:
            images = np.load(args.input, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DriverError(f"{args.input}: not a .npy array ({exc})") from None
        acc = Accelerator(args.package, backend=args.backend, timeout_s=args.timeout)
        if args.weights is not None:
            acc.load_weights(args.weights)
        out = acc.execute(images)
        result = out.labels if out.labels is not None else out.logits()
    except DriverError as exc:
        print(f"driver: error: {exc}", file=sys.stderr)
        return 2
    np.save(args.output, result)
    print(f"wrote {args.output}: {result.dtype} {tuple(result.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
