"""``make demo``: train or reuse the demo binary segmentation network, build its accelerator
project, check it bit for bit against torch, and print a short report.

Writes everything under ``demo_out/`` (checkpoints, the PNG of predictions, the QONNX export,
the build folder with ``verification.json``, ``threeway.json`` and ``report.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hw_gen.errors import HwGenError

if TYPE_CHECKING:
    from brevitas_models.train import TrainConfig

DEFAULT_OUT = Path("demo_out")
DEFAULT_TARGET_FPS = 1000.0
CHECK_FRAMES = 2


def _val_images(config, frames: int):
    import torch

    from brevitas_models.train import synthetic_splits

    _, val = synthetic_splits(config)
    return torch.stack([val[i][0] for i in range(frames)])


def run(out: Path, board: str, quiet: bool = False, config: TrainConfig | None = None,
        target_fps: float | None = DEFAULT_TARGET_FPS) -> dict:
    """The whole demo into ``out``; ``config`` (a ``TrainConfig``, default: its defaults)
    decides the training and the image size."""
    import torch

    from brevitas_models.demo import prepare
    from brevitas_models.export import export_qonnx
    from brevitas_models.train import TrainConfig
    from hw_gen.build import BUILD_STEPS, build
    from hw_gen.progress import step_bar

    config = config or TrainConfig()
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    say("[1/4] training or reusing the demo networks")
    model, checkpoint, metrics = prepare(out / "models", config, progress=not quiet)
    model.eval()
    x = _val_images(config, CHECK_FRAMES)
    onnx_path = out / "demo.onnx"
    say("[2/4] exporting QONNX")
    export_qonnx(model, x[:1], onnx_path)
    np.save(out / "check_input.npy", x.numpy())
    say("[3/4] hw-gen build (lower, sim, C simulation of our layers, FINN code generation)")
    with step_bar(len(BUILD_STEPS), "build", disable=quiet) as progress:
        with torch.no_grad():
            built = build(onnx_path, out / "build", board=board, target_fps=target_fps,
                          input_npy=out / "check_input.npy", progress=progress,
                          torch_model=model)
    say("[4/4] three-way check: torch == FINN's Python execution == sim, every step "
        "(the build's threeway step)")
    three = json.loads((out / "build" / "verify.json").read_text())
    (out / "threeway.json").write_text(json.dumps(three, indent=1))
    say("fitting the network to the usual boards (each folded to the best rate that fits)")
    fits = _board_fits(out / "build", x.shape[-2] * x.shape[-1])
    report = {
        "metrics": {k: metrics[k]["miou"] for k in ("demo", "demo_fp", "pixel_baseline")},
        "binary_over_fp": metrics["binary_over_fp"],
        "build_passed": built.passed,
        "threeway_passed": three["passed"],
        "throughput": built.step("lower").extra.get("throughput") if built.step("lower") else None,
        "seconds": round(time.perf_counter() - t0, 1),
        "board_fits": [asdict(f) for f in fits],
    }
    (out / "report.json").write_text(json.dumps(report, indent=1))
    if not quiet:
        print(format_report(report, metrics, built, three, out))
        from hw_gen.hwmodel.fit import format_fits

        print("\nfit of the network on the usual boards (highest rate within 80% of every "
              "resource, FIFOs sized):")
        print(format_fits(fits))
        print(f"report: {out / 'build' / 'report' / 'report.html'}")
    return report


def _board_fits(build_dir: Path, pixels: int):
    from qonnx.core.modelwrapper import ModelWrapper

    from hw_gen.finn_adapter import finn_log
    from hw_gen.hwmodel.fit import usual_board_fits
    from hw_gen.lowering import DATAFLOW_NAME

    with finn_log(build_dir / "finn.log"):
        return usual_board_fits(ModelWrapper(str(build_dir / DATAFLOW_NAME)), pixels)


def format_report(report, metrics, built, three, out: Path) -> str:
    lines = ["", "mIoU on the synthetic validation split:"]
    for name, label in (("demo", "binary demo network"), ("demo_fp", "full-precision twin"),
                        ("pixel_baseline", "1x1 per-pixel baseline")):
        lines.append(f"  {label:<26} {metrics[name]['miou']:.3f}")
    lines.append(f"  binary / full precision     {report['binary_over_fp']:.2f}")
    lines += ["", "build (OUT/verification.json):", built.summary(), ""]
    csim = built.step("csim_ours")
    if csim is not None and csim.status == "pass":
        lines.append(f"our layers' C simulation matched bit for bit: {csim.details}")
    lines += _buffer_lines(out / "build" / "layers.json")
    codegen = built.step("codegen")
    if codegen is not None and codegen.status == "pass":
        lines.append(f"FINN's code generation completed: {codegen.details}")
    t = report.get("throughput") or {}
    if t:
        lines.append(f"estimate: {t['frames_per_second']:.1f} frames/s at {t['clock_ns']:g} ns "
                     f"(slowest layer {t['slowest_layer']}, {t['cycles_per_frame']} cycles)")
    steps = len(three["steps"])
    integers = sum(s["integers_compared"] for s in three["steps"])
    lines.append(f"three-way check (torch, FINN, sim) over {steps} lowering steps: "
                 f"{integers} integers compared, {'PASS' if three['passed'] else 'FAIL'}")
    lines.append(f"outputs in {out}/ (predictions: {out}/models/demo_predictions.png)")
    lines.append(f"total {report['seconds']:.0f} s")
    return "\n".join(lines)


def _buffer_lines(layers_json: Path) -> list[str]:
    """One line per layer that reports its buffers (the attention layer's frame buffer and
    residual FIFO)."""
    if not layers_json.exists():
        return []
    buffers = json.loads(layers_json.read_text()).get("buffers", {})
    return [f"{name}: frame buffer {b['frame_buffer']['bits']} bits ({b['row_type']} between "
            f"the passes), residual FIFO {b['residual_fifo']['depth_words']} words"
            for name, b in buffers.items()]


def main(argv: list[str] | None = None) -> int:
    from hw_gen.boards import DEFAULT_BOARD

    parser = argparse.ArgumentParser(
        prog="python -m hw_gen.demo",
        description="Train or reuse the demo binary segmentation network, build its "
        "accelerator project, verify it bit-exact and print the report.")
    parser.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--board", default=DEFAULT_BOARD, help="board from FINN's part map")
    parser.add_argument("--target-fps", type=float, default=DEFAULT_TARGET_FPS,
                        help="frames/s the folding aims for at 100 MHz (default %(default)g)")
    args = parser.parse_args(argv)
    try:
        report = run(args.out, args.board, target_fps=args.target_fps)
    except HwGenError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2
    return 0 if report["build_passed"] and report["threeway_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
