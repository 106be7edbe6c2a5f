"""Benchmark: the demo network at 256x512 on each usual board, folded to the highest frame
rate that fits (every resource within 80%), its FIFOs sized by the cycle model and the whole
estimated: frames/s, Mpixel/s, LUT/BRAM/URAM/DSP utilisation, FIFO memory, and the seconds
the folding search, FIFO sizing and estimate took per board.

The network is ``brevitas_models.nets`` "demo" (default width, MBU and axial attention) with
seeded random batch-norm statistics (the estimates depend on shapes and data types, not on
trained weights). Reference in the same process: the lowering of the network to FINN's
hardware layers (QONNX to folded dataflow graph); the JSON gives each board's estimate time
over it. Aim: every board's estimate in seconds, well under the lowering.

    python bench/hwmodel.py [--out bench/hwmodel.json] [--size 256 512]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

SEED = 0


def demo_network(size: tuple[int, int]):
    import torch

    from brevitas_models.nets import build as build_net

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from lowering_nets import randomize_bn

    torch.manual_seed(SEED)
    return randomize_bn(build_net("demo", input_size=size), SEED)


def measure(work: Path, size: tuple[int, int]) -> dict:
    import torch
    from qonnx.core.modelwrapper import ModelWrapper

    from brevitas_models.export import export_qonnx
    from hw_gen.hwmodel.fit import usual_board_fits
    from hw_gen.lowering import lower

    net = demo_network(size)
    onnx_path = work / "demo.onnx"
    export_qonnx(net, torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(SEED)),
                 onnx_path)
    t0 = time.perf_counter()
    lowered = lower(onnx_path, work / "lowered")
    lowering = time.perf_counter() - t0
    model = ModelWrapper(str(lowered.dataflow_path))
    fits = usual_board_fits(model, size[0] * size[1])
    boards = {}
    for f in fits:
        row = asdict(f)
        row["estimate_over_lowering"] = round(f.seconds / lowering, 3)
        boards[f.board] = row
    return {
        "network": f"demo width {net.width}, {size[0]}x{size[1]}, random batch norm "
                   f"(seed {SEED})",
        "fit": "every resource at most 80% of the board (layers and shell; FIFOs sized after)",
        "reference": "lowering QONNX -> folded FINN dataflow graph, same process",
        "reference_seconds": round(lowering, 2),
        "boards": boards,
        "note": "Pynq-Z1 and Pynq-Z2 share a part and clock: one search, its seconds shown "
                "for both",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/hwmodel.json"))
    parser.add_argument("--size", type=int, nargs=2, default=(256, 512), metavar=("H", "W"))
    args = parser.parse_args(argv)
    from hw_gen.finn_adapter import finn_log

    with tempfile.TemporaryDirectory() as tmp, finn_log(Path(tmp) / "finn.log"):
        report = measure(Path(tmp), tuple(args.size))
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    from hw_gen.hwmodel.fit import BoardFit, format_fits

    fields = BoardFit.__dataclass_fields__
    print(format_fits([BoardFit(**{k: v for k, v in b.items() if k in fields})
                       for b in report["boards"].values()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
