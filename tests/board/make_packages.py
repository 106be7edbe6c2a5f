"""Main environment: build and deploy the board tests' packages, with the model's outputs
(qonnx's executor) on a few images as the reference: ``python tests/board/make_packages.py DIR``.

Writes ``DIR/<net>/pkg`` (the deploy package) and ``DIR/<net>/reference.npz`` (``images``,
``logits``) for the binary network, the 2-bit network and the demo network; and
``DIR/runtime_weights/``: a package built with ``--runtime-weights`` from one small 2-bit
network, ``b_weights.npz`` (``hw-gen weights``) of another with the same architecture, and
that one's ``reference.npz``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from driver_nets import (  # noqa: E402
    DEMO_SIZE, NETS, RUNTIME_WEIGHTS_SIZE, build_and_deploy, demo_net, export, qonnx_logits,
    retrained_two_bit)
from hw_gen.finn_adapter import init_finn  # noqa: E402

SIZE = 16


def main(dest: Path) -> None:
    nets = {name: (factory, SIZE) for name, factory in NETS.items()}
    nets["demo"] = (demo_net, DEMO_SIZE)
    init_finn(dest / "finn_build")
    for name, (factory, size) in nets.items():
        work = dest / name
        work.mkdir(parents=True, exist_ok=True)
        model = export(factory(), (1, 3, size, size), work / "model.onnx")
        build_and_deploy(model, work)
        images = np.random.default_rng(11).integers(0, 256, (3, size, size, 3)).astype(np.uint8)
        np.savez(work / "reference.npz", images=images, logits=qonnx_logits(model, images))
        print(f"{name}: {work / 'pkg'}")
    runtime_weights(dest / "runtime_weights")


def runtime_weights(work: Path) -> None:
    from hw_gen.runtime_weights import export_weights

    work.mkdir(parents=True, exist_ok=True)
    shape = (1, 3, RUNTIME_WEIGHTS_SIZE, RUNTIME_WEIGHTS_SIZE)
    model_a = export(retrained_two_bit(0), shape, work / "a.onnx")
    model_b = export(retrained_two_bit(7), shape, work / "b.onnx")
    build_and_deploy(model_a, work, runtime_weights=True)
    export_weights(model_b, work / "pkg", work / "b_weights.npz")
    images = np.random.default_rng(11).integers(0, 256, (3,) + shape[2:] + (3,)).astype(np.uint8)
    np.savez(work / "reference.npz", images=images, logits=qonnx_logits(model_b, images),
             logits_a=qonnx_logits(model_a, images))
    print(f"runtime_weights: {work / 'pkg'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
