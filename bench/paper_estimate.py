"""Benchmark: board estimates of the paper-scale networks (``hw-gen build --stop-after
estimate``), each at its own input size, folded for a target rate on ZCU104.

Random weights (the estimate does not depend on them), seeded; ``--runtime-weights``, since
matrix-vector weights in URAM must be written at run time on UltraScale+ parts. For each
configuration the build records what the folded accelerator reaches (frames/s at the board's
clock), what limits it (the slowest layer or the output DMA), its utilisation, the FIFO memory
and the seconds per step. When ZCU104 cannot hold the network, the record keeps the refusal,
the utilisation of the folding for the target (with the layers using most of each resource),
and the fold of the same lowered graph on larger boards (FIFOs not counted there).

    python bench/paper_estimate.py [--configs ...] [--out bench/paper_estimate.json]
                                   [--readme brevitas_models/README.md] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = ("seg-r18-cityscapes", "road-r18-kitti", "sod-r18-ecssd")
BOARD = "ZCU104"
OTHER_BOARDS = ("ZCU102", "VCK190", "U250")
TARGET_FPS = 60.0
TOP = 3


def _rounded(util: dict) -> dict:
    return {k: round(v, 4) for k, v in util.items()}


def _top_layers(rows: dict, keys=("LUT", "BRAM_18K", "URAM")) -> dict:
    return {k: [[r["node"], r[k]] for r in sorted(rows.values(), key=lambda r: -r[k])[:TOP]
                if r[k]] for k in keys}


def _with_fifos(folded, board, clk: float) -> dict:
    """The folding's FIFOs sized by the cycle model, and the whole estimated."""
    from hw_gen.hwmodel.dataflow import dataflow_partition, insert_fifos
    from hw_gen.hwmodel.estimate import estimate_network
    from hw_gen.hwmodel.steps import size_fifo_model

    with tempfile.TemporaryDirectory() as tmp:
        fifo_model = insert_fifos(dataflow_partition(folded, Path(tmp)), board.part)
    _, run, _ = size_fifo_model(fifo_model, board)
    net = estimate_network(fifo_model, board, clk, run.last_output)["network"]
    return {"utilisation": _rounded(net["utilisation"]), "fifo": net["fifo"]}


def _without_the_board(lowered, board_name: str, fifos: bool) -> dict:
    """The refused board's folding for the target, and the other boards' best folding."""
    from hw_gen.boards import get_board
    from hw_gen.errors import HwGenError
    from hw_gen.hwmodel import fold_search as fs

    board = get_board(board_name)
    clk = 1000.0 / board.default_clock_mhz
    folded, rows, totals = fs.fold_at(lowered, TARGET_FPS, clk, board)
    record = {"at_target": {
        "fps": round(fs.achieved_fps(rows, clk, fs.dma_fps(folded, board, clk)), 2),
        "utilisation": _rounded(fs._utilisation(totals, board)), "totals": totals,
        "most": _top_layers(rows)}, "other_boards": {}}
    if fifos:
        record["at_target"]["with_fifos"] = _with_fifos(folded, board, clk)
    for name in OTHER_BOARDS:
        other = get_board(name)
        clk = 1000.0 / other.default_clock_mhz
        try:
            result = fs.fold_to_board(lowered, other, clk, TARGET_FPS)
            record["other_boards"][name] = {
                "clock_mhz": other.default_clock_mhz, "fps": round(result.fps, 2),
                "utilisation": _rounded(result.utilisation), "note": result.warning}
        except HwGenError as exc:
            record["other_boards"][name] = {"refusal": str(exc)}
    return record


def estimate(config: str, work: Path, fifos: bool = False) -> dict:
    import torch
    from qonnx.core.modelwrapper import ModelWrapper

    from brevitas_models.configs import build_config
    from brevitas_models.export import export_qonnx
    from hw_gen.build import build
    from hw_gen.errors import HwGenError

    torch.manual_seed(0)
    model = build_config(config).eval()
    h, w = model.input_size
    x = torch.randint(0, 256, (1, 3, h, w), generator=torch.Generator().manual_seed(0)) / 255.0
    onnx_path = export_qonnx(model, x, work / f"{config}.onnx")
    record = {"config": config, "input_hw": [h, w], "board": BOARD, "target_fps": TARGET_FPS,
              "runtime_weights": True}
    start = time.perf_counter()
    try:
        result = build(onnx_path, work / "build", board=BOARD, target_fps=TARGET_FPS,
                       stop_after="estimate", runtime_weights=True)
    except HwGenError as exc:
        lowered = ModelWrapper(str(next((work / "build" / "steps").glob("*_specialize.onnx"))))
        record.update({"fits": False, "refusal": str(exc),
                       "build_seconds": round(time.perf_counter() - start, 1)})
        record.update(_without_the_board(lowered, BOARD, fifos))
        return record
    network = json.loads((work / "build" / "report" / "estimate.json").read_text())["network"]
    record.update({
        "fits": network["fits"], "passed": result.passed, "fps": round(network["fps"], 2),
        "clock_mhz": network["clock_mhz"], "limited_by": network["limited_by"],
        "cycles_per_frame": network["cycles_per_frame"],
        "fold_warning": result.steps[0].extra.get("facts", {}).get("fold_warning"),
        "utilisation": _rounded(network["utilisation"]), "totals": network["totals"],
        "capacity": network["capacity"], "fifo": network["fifo"],
        "build_seconds": round(time.perf_counter() - start, 1),
        "step_seconds": {s.step: s.seconds for s in result.steps},
    })
    return record


def _fifo_kib(fifo: dict | None) -> str:
    return f"{fifo['bits'] / 8192:.0f} KiB" if fifo else "not sized"


def table(records: list[dict]) -> str:
    """The README table: one row per configuration."""
    lines = [f"Folded for {TARGET_FPS:g} frames/s on {BOARD} (`make paper-tables`, "
             "`bench/paper_estimate.json`; runtime-writable weights, fit limit 80% of every "
             "resource, FIFOs sized by the cycle model and counted). Where the folding search "
             f"refuses {BOARD}, the row gives the folding for the target (frames/s in "
             "brackets, FIFOs not sized) and the larger boards that hold the same graph without its FIFOs:", "",
             "| configuration | input (W x H) | on ZCU104 | frames/s | LUT | BRAM18 | URAM | "
             "FIFOs | limited by |", "|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        h, w = r["input_hw"]
        if "refusal" in r:
            at = r["at_target"]
            sized = at.get("with_fifos", {})
            u, fifo, fps = sized.get("utilisation", at["utilisation"]), sized.get("fifo"), \
                f"({at['fps']:.1f})"
            fits = [f"{n} {o['fps']:.1f} frames/s" for n, o in r["other_boards"].items()
                    if "fps" in o and max(o["utilisation"].values()) <= 0.8]
            status = "refused"
            limit = (f"{r['refusal'].split(': ', 1)[-1]}; without FIFOs it fits "
                     f"{', '.join(fits) or 'none of ' + ', '.join(r['other_boards'])}")
        else:
            u, fifo, fps = r["utilisation"], r["fifo"], f"{r['fps']:.1f}"
            status = "fits" if r["fits"] else "layers fit, FIFOs do not"
            limit = r["limited_by"] + (f"; {r['fold_warning']}" if r["fold_warning"] else "")
        lines.append(f"| {r['config']} | {w}x{h} | {status} | {fps} | {100 * u['LUT']:.0f}% | "
                     f"{100 * u['BRAM_18K']:.0f}% | {100 * u['URAM']:.0f}% | "
                     f"{_fifo_kib(fifo)} | {limit} |")
    return "\n".join(lines)


def write_readme(path: Path, text: str) -> None:
    begin, end = "<!-- board-estimates:begin -->", "<!-- board-estimates:end -->"
    doc = path.read_text()
    if begin not in doc or end not in doc:
        raise SystemExit(f"{path}: no {begin} ... {end} markers")
    head, rest = doc.split(begin, 1)
    path.write_text(head + begin + "\n" + text + "\n" + end + rest.split(end, 1)[1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    p.add_argument("--out", default=str(Path(__file__).with_suffix(".json")))
    p.add_argument("--readme", help="write the table between the board-estimates markers")
    p.add_argument("--keep", help="folder for the builds (default: a temporary one)")
    p.add_argument("--fifos-on-refusal", action="store_true",
                   help="size the FIFOs of a refused board's target folding (at 1024x512 the "
                        "cycle model took over 24 GB)")
    args = p.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="paper_estimate_"))
    records = []
    for config in args.configs:
        (root / config).mkdir(parents=True, exist_ok=True)
        records.append(estimate(config, root / config, args.fifos_on_refusal))
        print(json.dumps({k: records[-1].get(k) for k in ("config", "fits", "fps", "refusal")}),
              flush=True)
        Path(args.out).write_text(json.dumps(records, indent=1, default=str) + "\n")
    if args.readme:
        write_readme(Path(args.readme), table(records))
    print(table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
