"""Lowering a Brevitas QONNX export into a FINN dataflow graph of hardware layers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from qonnx.core.modelwrapper import ModelWrapper

from hw_gen.boards import DEFAULT_BOARD, get_board
from hw_gen.finn_adapter import init_finn
from hw_gen.lowering.pipeline import STEP_NAMES, Checker, LoweringRun, run_lowering
from hw_gen.report import (
    LayerRow,
    buffer_reports,
    format_table,
    layer_rows,
    throughput,
    write_layer_report,
)

DATAFLOW_NAME = "dataflow.onnx"


@dataclass
class LoweringResult:
    run: LoweringRun
    out_dir: Path
    dataflow_path: Path | None
    rows: list[LayerRow]
    clk_ns: float

    @property
    def model(self) -> ModelWrapper:
        return self.run.model

    @property
    def complete(self) -> bool:
        return self.dataflow_path is not None

    def table(self) -> str:
        return format_table(self.rows)

    def throughput(self) -> dict:
        return throughput(self.rows, self.clk_ns)


def lower(
    model_path: str | Path,
    out_dir: str | Path,
    board: str = DEFAULT_BOARD,
    outputs: str = "both",
    clk_ns: float = 10.0,
    target_fps: float | None = None,
    folding_config: str | Path | None = None,
    stop_after: str | None = None,
    resume: bool = False,
    checker: Checker | None = None,
    progress: Callable[[str], None] | None = None,
    fold_board: dict | None = None,
) -> LoweringResult:
    """Lower ``model_path`` into ``out_dir``; writes ``dataflow.onnx`` (the whole lowered graph,
    hardware layers and the software ends, in one file) and ``layers.json`` when every step ran.
    ``fold_board`` (``{"board": name, "fit": 0.8, "strict_fps": False}``) folds the target rate
    to the board's resources."""
    out = Path(out_dir)
    init_finn(out / "finn_build")
    fpga = get_board(board)
    run = run_lowering(
        model_path, out, fpga.part, outputs=outputs, stop_after=stop_after, resume=resume,
        checker=checker, progress=progress, clk_ns=clk_ns, target_fps=target_fps,
        folding_config=None if folding_config is None else str(folding_config),
        fold_board=fold_board,
        board=fpga.name,
    )
    dataflow = None
    rows: list[LayerRow] = []
    if run.finished:
        dataflow = out / DATAFLOW_NAME
        run.model.set_metadata_prop("hwgen.board", fpga.name)
        run.model.set_metadata_prop("hwgen.clk_ns", str(clk_ns))
        run.model.save(str(dataflow))
        rows = layer_rows(run.model)
        write_layer_report(rows, clk_ns, out / "layers.json", buffer_reports(run.model, fpga))
        (out / "layers.txt").write_text(format_table(rows) + "\n")
    return LoweringResult(run, out, dataflow, rows, clk_ns)


__all__ = ["lower", "LoweringResult", "STEP_NAMES", "DATAFLOW_NAME"]
