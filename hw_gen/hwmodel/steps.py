"""The build steps ``fifo`` and ``estimate`` (called from :mod:`hw_gen.build`).

``fifo``: FINN's FIFO insertion on the dataflow partition, our cycle model sizes every FIFO
(a depth given in the ``--folding`` file is kept unless it is below the deadlock-free one),
and FINN's FIFO-sizing file ``OUT/report/fifo_depths.json`` keyed by the FIFO nodes.
``estimate``: ``OUT/report/estimate.json`` and ``OUT/report/folding.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from qonnx.custom_op.registry import getCustomOp

from hw_gen.boards import Board
from hw_gen.hwmodel.dataflow import (
    FIFO_OP,
    dataflow_partition,
    insert_fifos,
    write_fifo_config,
)
from hw_gen.hwmodel.estimate import dma_cycles, estimate_network, max_utilisation
from hw_gen.hwmodel.fifosim import hw_nodes, size_fifos

REPORT_DIR = "report"
FIFO_CONFIG = "fifo_depths.json"
FIFO_MODEL = "dataflow_fifos.onnx"


class DeadlockError(Exception):
    """A user FIFO depth below the depth the graph needs to make progress."""


def report_dir(out: Path) -> Path:
    path = Path(out) / REPORT_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_fifo_depths(folding_config: str | Path | None) -> dict[str, int]:
    """FIFO node -> depth from a folding file (entries of ``StreamingFIFO_rtl`` nodes)."""
    if folding_config is None:
        return {}
    data = json.loads(Path(folding_config).read_text())
    return {name: int(attrs["depth"]) for name, attrs in data.items()
            if name.startswith(FIFO_OP) and isinstance(attrs, dict) and "depth" in attrs}


def bottleneck_cycles(model, board: Board) -> int:
    cycles = [int(getCustomOp(n).get_exp_cycles()) for n in hw_nodes(model)]
    return max(cycles + list(dma_cycles(model, board.memory_port_bits).values()) + [1])


def run_fifo(model, out: Path, board: Board, folding_config=None) -> dict:
    """Size the FIFOs; returns what the ``estimate`` step and the report need."""
    t0 = time.perf_counter()
    fifo_model = insert_fifos(dataflow_partition(model, out / "finn_build" / "partitions_fifo"),
                              board.part)
    period = bottleneck_cycles(fifo_model, board)
    depths, run = size_fifos(fifo_model, period)
    user = user_fifo_depths(folding_config)
    unknown = sorted(set(user) - {d.fifo for d in depths})
    if unknown:
        from hw_gen.errors import HwGenError

        raise HwGenError(f"--folding {folding_config}: FIFO {unknown[0]} is not in the built "
                         f"graph; its FIFOs are {', '.join(sorted(d.fifo for d in depths))}")
    for d in depths:
        depth = user.get(d.fifo, d.rate)
        if d.fifo in user and depth < d.deadlock_free:
            raise DeadlockError(
                f"deadlock: FIFO {d.fifo} on the stream {d.producer} -> {d.consumer} has depth "
                f"{depth} (from {folding_config}); the graph needs at least {d.deadlock_free}")
        inst = getCustomOp(fifo_model.get_node_from_name(d.fifo))
        inst.set_nodeattr("depth", depth)
        if inst.resolve_ram_style() == "ultra" and not (board.resources or {}).get("URAM"):
            inst.set_nodeattr("ram_style", "block")  # FINN's ladder picks URAM on any part
    reports = report_dir(out)
    info = write_fifo_config(fifo_model, reports / FIFO_CONFIG)
    fifo_model.save(str(out / "finn_build" / FIFO_MODEL))
    (reports / "fifo_model.json").write_text(json.dumps({
        "period_cycles": period, "latency_cycles": run.last_output,
        "measured_period_cycles": run.period,
        "streams": [asdict(d) | {"depth": info["fifo_depths"][d.fifo]} for d in depths],
    }, indent=1))
    return {"model": fifo_model, "depths": depths, "run": run, "period": period,
            "seconds": time.perf_counter() - t0, "bits": sum(info["fifo_sizes"].values())}


def run_estimate(fifo: dict, out: Path, board: Board, clk_ns: float) -> dict:
    from hw_gen.folding import write_folding_config

    est = estimate_network(fifo["model"], board, clk_ns, fifo["run"].last_output)
    reports = report_dir(out)
    (reports / "estimate.json").write_text(json.dumps(est, indent=1, default=_json_float))
    write_folding_config(fifo["model"], reports / "folding.json")
    return est


def _json_float(x):
    return None if x != x else str(x)


def estimate_summary(est: dict) -> str:
    net = est["network"]
    key, frac = max_utilisation(est)
    return (f"{net['fps']:.1f} frames/s at {net['clock_mhz']:g} MHz (limited by "
            f"{net['limited_by']}); largest utilisation {key} {100 * frac:.1f}% of "
            f"{net['board']}; FIFOs {net['fifo']['bits'] / 8192:.1f} KiB")
