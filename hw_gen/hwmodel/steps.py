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


def user_fifos(folding_config: str | Path | None) -> dict[str, dict]:
    """FIFO node -> its attributes in a folding file (entries of ``StreamingFIFO_rtl`` nodes)."""
    if folding_config is None:
        return {}
    data = json.loads(Path(folding_config).read_text())
    return {name: attrs for name, attrs in data.items()
            if name.startswith(FIFO_OP) and isinstance(attrs, dict)}


def bottleneck_cycles(model, board: Board) -> int:
    cycles = [int(getCustomOp(n).get_exp_cycles()) for n in hw_nodes(model)]
    return max(cycles + list(dma_cycles(model, board.memory_port_bits).values()) + [1])


def size_fifo_model(fifo_model, board: Board, user: dict[str, dict] | None = None,
                    source: str = "--folding"):
    """Size every FIFO of ``fifo_model`` (a user depth kept unless below the deadlock-free
    one), then place the deep ones in BRAM or URAM (a user ``ram_style`` kept)."""
    from hw_gen.hwmodel.fold_search import choose_fifo_memory

    user = user or {}
    period = bottleneck_cycles(fifo_model, board)
    depths, run = size_fifos(fifo_model, period)
    unknown = sorted(set(user) - {d.fifo for d in depths})
    if unknown:
        from hw_gen.errors import HwGenError

        raise HwGenError(f"--folding {source}: FIFO {unknown[0]} is not in the built graph; its "
                         f"FIFOs are {', '.join(sorted(d.fifo for d in depths))}")
    for d in depths:
        depth = int(user.get(d.fifo, {}).get("depth", d.rate))
        if depth < d.deadlock_free:
            raise DeadlockError(
                f"deadlock: FIFO {d.fifo} on the stream {d.producer} -> {d.consumer} has depth "
                f"{depth} (from {source}); the graph needs at least {d.deadlock_free}")
        inst = getCustomOp(fifo_model.get_node_from_name(d.fifo))
        inst.set_nodeattr("depth", depth)
        if "ram_style" in user.get(d.fifo, {}):
            inst.set_nodeattr("ram_style", user[d.fifo]["ram_style"])
    choose_fifo_memory(fifo_model, board, {f for f, a in user.items() if "ram_style" in a})
    return depths, run, period


def run_fifo(model, out: Path, board: Board, folding_config=None) -> dict:
    """Size the FIFOs; returns what the ``estimate`` step and the report need."""
    t0 = time.perf_counter()
    fifo_model = insert_fifos(dataflow_partition(model, out / "finn_build" / "partitions_fifo"),
                              board.part)
    depths, run, period = size_fifo_model(fifo_model, board, user_fifos(folding_config),
                                          str(folding_config))
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


def run_estimate(fifo: dict, out: Path, board: Board, clk_ns: float, fit: float = 0.8) -> dict:
    from hw_gen.folding import write_folding_config

    est = estimate_network(fifo["model"], board, clk_ns, fifo["run"].last_output, fit)
    reports = report_dir(out)
    (reports / "estimate.json").write_text(json.dumps(est, indent=1, default=_json_float))
    write_folding_config(fifo["model"], reports / "folding.json")
    return est


def _json_float(x):
    return None if x != x else str(x)


def estimate_summary(est: dict) -> str:
    net = est["network"]
    key, frac = max_utilisation(est)
    fits = "fits" if net["fits"] else "DOES NOT FIT"
    return (f"{net['fps']:.1f} frames/s at {net['clock_mhz']:g} MHz (limited by "
            f"{net['limited_by']}); {fits}: largest utilisation {key} {100 * frac:.1f}% of "
            f"{net['board']}; FIFOs {net['fifo']['bits'] / 8192:.1f} KiB")
