"""How a lowered network fits the usual boards: each folded to the highest rate that fits, its
FIFOs sized and the whole estimated (``make demo``'s table and ``bench/hwmodel.py``)."""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper

from hw_gen.boards import get_board
from hw_gen.errors import HwGenError
from hw_gen.hwmodel.dataflow import dataflow_partition, insert_fifos
from hw_gen.hwmodel.estimate import RESOURCES, estimate_network, max_utilisation
from hw_gen.hwmodel.fold_search import fold_to_board
from hw_gen.hwmodel.steps import size_fifo_model

USUAL_BOARDS = ("Pynq-Z1", "Pynq-Z2", "Ultra96-V2", "ZCU104", "KV260_SOM")
UNBOUNDED_FPS = 1e7  # a target no board reaches: fold to the best that fits


@dataclass
class BoardFit:
    board: str
    clock_mhz: float
    fps: float
    mpixel_s: float
    utilisation: dict[str, float]
    limiting: str  # the resource with the largest utilisation
    fifo_kib: float
    latency_cycles: int
    seconds: float  # folding search, FIFO sizing and estimate
    fits: bool  # layers, shell and FIFOs within the fit limit
    note: str | None


def _fold_and_size(model, board, clk_ns, target_fps, reserve=None):
    folded = fold_to_board(model, board, clk_ns, target_fps, reserve=reserve)
    with tempfile.TemporaryDirectory() as tmp:
        fifo_model = insert_fifos(dataflow_partition(folded.model, Path(tmp)), board.part)
    _, run, _ = size_fifo_model(fifo_model, board)
    return folded, run, estimate_network(fifo_model, board, clk_ns, run.last_output)


def board_fit(model: ModelWrapper, board_name: str, pixels: int,
              target_fps: float = UNBOUNDED_FPS) -> BoardFit:
    """Fold, size the FIFOs, estimate; if the FIFOs push it over, fold again with what they
    take reserved."""
    board = get_board(board_name)
    clk_ns = 1000.0 / board.default_clock_mhz
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # FINN's SetFolding prints per layer
        folded, run, est = _fold_and_size(model, board, clk_ns, target_fps)
        if not est["network"]["fits"]:
            added = [r for r in est["layers"]  # what FINN's FIFO insertion adds
                     if r["op"].startswith(("StreamingFIFO", "StreamingDataWidthConverter"))]
            reserve = {k: sum(r[k] for r in added) for k in RESOURCES}
            try:
                folded, run, est = _fold_and_size(model, board, clk_ns, target_fps, reserve)
            except HwGenError:  # no rate leaves room for them
                pass
    seconds = time.perf_counter() - t0
    net = est["network"]
    key, _ = max_utilisation(est)
    return BoardFit(board.name, board.default_clock_mhz, net["fps"], net["fps"] * pixels / 1e6,
                    {k: net["utilisation"][k] for k in RESOURCES}, key,
                    net["fifo"]["bits"] / 8192, run.last_output, seconds, net["fits"],
                    folded.warning)


def format_fits(fits: list[BoardFit]) -> str:
    head = f"{'board':<11}{'MHz':>5}{'frames/s':>10}{'Mpx/s':>8}" + "".join(
        f"{k:>9}" for k in RESOURCES) + f"{'FIFO KiB':>10}  fits"
    lines = [head]
    for f in fits:
        util = "".join(f"{100 * f.utilisation[k]:>8.1f}%" if math.isfinite(f.utilisation[k])
                       else f"{'-':>9}" for k in RESOURCES)
        lines.append(f"{f.board:<11}{f.clock_mhz:>5g}{f.fps:>10.1f}{f.mpixel_s:>8.2f}{util}"
                     f"{f.fifo_kib:>10.1f}  {'yes' if f.fits else 'no'}")
    return "\n".join(lines)


def usual_board_fits(model: ModelWrapper, pixels: int,
                     boards: tuple[str, ...] = USUAL_BOARDS) -> list[BoardFit]:
    """``board_fit`` on each board; boards with the same part and clock share one search."""
    from dataclasses import replace

    done: dict[tuple[str, int], BoardFit] = {}
    fits = []
    for name in boards:
        board = get_board(name)
        key = (board.part, board.default_clock_mhz)
        if key not in done:
            done[key] = board_fit(model, name, pixels)
        first = done[key]
        note = first.note.replace(f" {first.board} ", f" {board.name} ") if first.note else None
        fits.append(replace(first, board=board.name, note=note))
    return fits
