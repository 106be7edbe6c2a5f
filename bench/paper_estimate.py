"""Benchmark: the board estimate of the paper-scale network, ``seg-r18-cityscapes`` at
1024x512 (W x H) on ZCU104, folded for 60 frames/s (``hw-gen build --stop-after estimate``).

Random weights (the estimate does not depend on them), seeded. Records what the folded
accelerator reaches (frames/s at the board's clock), what limits it (the slowest layer or the
output DMA), its utilisation of LUT, FF, BRAM, URAM and DSP, the FIFO memory, and the build's
seconds per step.

    python bench/paper_estimate.py [--out bench/paper_estimate.json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

CONFIG = "seg-r18-cityscapes"
BOARD = "ZCU104"
TARGET_FPS = 60.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(Path(__file__).with_suffix(".json")))
    p.add_argument("--keep", help="build folder to keep (default: a temporary one)")
    args = p.parse_args()
    import torch

    from brevitas_models.configs import build_config
    from brevitas_models.export import export_qonnx
    from hw_gen.build import build
    from hw_gen.errors import HwGenError

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="paper_estimate_"))
    torch.manual_seed(0)
    model = build_config(CONFIG).eval()
    h, w = model.input_size
    x = torch.randint(0, 256, (1, 3, h, w), generator=torch.Generator().manual_seed(0)) / 255.0
    onnx_path = export_qonnx(model, x, work / f"{CONFIG}.onnx")
    start = time.perf_counter()
    try:
        result = build(onnx_path, work / "build", board=BOARD, target_fps=TARGET_FPS,
                       stop_after="estimate")
    except HwGenError as exc:  # the board cannot hold the network at any folding
        record = {"config": CONFIG, "input_hw": [h, w], "board": BOARD,
                  "target_fps": TARGET_FPS, "fits": False, "refusal": str(exc),
                  "build_seconds": round(time.perf_counter() - start, 1)}
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
        print(f"{BOARD} refused: {exc}")
        return 0
    seconds = time.perf_counter() - start
    network = json.loads((work / "build" / "report" / "estimate.json").read_text())["network"]
    record = {
        "config": CONFIG, "input_hw": [h, w], "board": BOARD, "target_fps": TARGET_FPS,
        "fits": True, "passed": result.passed, "fps": network["fps"],
        "clock_mhz": network["clock_mhz"],
        "limited_by": network["limited_by"], "cycles_per_frame": network["cycles_per_frame"],
        "utilisation": network["utilisation"], "totals": network["totals"],
        "capacity": network["capacity"], "fifo": network["fifo"],
        "build_seconds": round(seconds, 1),
        "step_seconds": {s.step: s.seconds for s in result.steps},
    }
    Path(args.out).write_text(json.dumps(record, indent=1, default=str) + "\n")
    print(json.dumps({k: record[k] for k in ("fps", "limited_by", "utilisation")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
