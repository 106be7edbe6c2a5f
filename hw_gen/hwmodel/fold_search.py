"""Folding to a board: the highest frame rate up to a target that fits, with the memory options
that minimise the largest utilisation fraction.

For a rate F, every layer (FINN's through SetFolding, ours through their folding options) gets
the least parallelism that meets F's cycle budget; then each matrix-vector unit and each layer
of ours takes the folding within that budget and the memory options
(:mod:`hw_gen.hwmodel.layer_options`) that minimise the board's utilisation fractions, largest
first (ties: fewer LUTs), two greedy passes over the layers. A
folding *fits* when every resource of the layers and the shell stays at most ``fit`` (80%) of
the board. The rate is capped by the DMA's bandwidth on the board's memory port; when F does
not fit, a bisection on the rate (in log space) finds the highest one that does, and the
warning names the resource over its limit at the next rate up and the layer using most of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_gen.boards import Board
from hw_gen.errors import HwGenError
from hw_gen.hwmodel import layer_options
from hw_gen.hwmodel import resources as R
from hw_gen.hwmodel.estimate import RESOURCES, boundary_streams, layer_estimate
from hw_gen.hwmodel.fifosim import hw_nodes

DEFAULT_FIT = 0.8
BISECTION_STEPS = 12


@dataclass
class FoldResult:
    model: ModelWrapper
    fps: float  # the rate folded for
    target_fps: float
    utilisation: dict[str, float]
    warning: str | None = None


def _estimates(model: ModelWrapper, board: Board) -> dict[str, dict]:
    return {n.name: layer_estimate(n, model, board.part) for n in hw_nodes(model)}


def _shell(model: ModelWrapper, board: Board) -> dict[str, int]:
    rows = R.shell_estimate([w for _, _, w in boundary_streams(model)], board.memory_port_bits)
    return {k: sum(r[k] for r in rows) for k in RESOURCES}


def _utilisation(totals: dict[str, int], board: Board) -> dict[str, float]:
    cap = board.resources or {}
    return {k: (totals[k] / cap[k]) if cap.get(k) else (math.inf if totals[k] else 0.0)
            for k in RESOURCES}


def _score(totals, board):
    """Lower is better: the utilisation fractions, largest first, then LUTs."""
    util = _utilisation(totals, board)
    return tuple(sorted(util.values(), reverse=True)) + (totals["LUT"],)


def choose_options(model: ModelWrapper, board: Board, rows: dict[str, dict],
                   totals: dict[str, int], budget_cycles: int) -> None:
    """Per matrix-vector unit and per layer of ours, the folding within ``budget_cycles`` and
    the memory options (:mod:`hw_gen.hwmodel.layer_options`) that minimise the utilisation,
    largest resource first; two greedy passes over the layers."""
    has_uram = bool((board.resources or {}).get("URAM"))
    for _ in range(2):
        for node in hw_nodes(model):
            inst = getCustomOp(node)
            memories = layer_options.memory_settings(node, inst, board.part, has_uram)
            foldings = layer_options.folding_settings(node, inst, budget_cycles)
            if len(memories) * len(foldings) == 1 and not memories[0] and not foldings[0]:
                continue
            best = None
            for folding in foldings:
                for memory in memories:
                    layer_options.apply(inst, {**folding, **memory})
                    row = layer_estimate(node, model, board.part)
                    trial = {k: totals[k] - rows[node.name][k] + row[k] for k in RESOURCES}
                    key = _score(trial, board)
                    if best is None or key < best[0]:
                        best = (key, {**folding, **memory}, row, trial)
            layer_options.apply(inst, best[1])
            rows[node.name] = best[2]
            totals.update(best[3])


def choose_fifo_memory(fifo_model: ModelWrapper, board: Board,
                       keep: set[str] | frozenset = frozenset()) -> None:
    """Deep FIFOs (block or URAM in FINN's ladder) in BRAM or URAM, the deepest first, each
    where it keeps the largest utilisation lowest; FIFOs in ``keep`` keep their style."""
    from hw_gen.hwmodel.dataflow import FIFO_OP

    rows = _estimates(fifo_model, board)
    totals = {k: sum(r[k] for r in rows.values()) for k in RESOURCES}
    shell = _shell(fifo_model, board)
    totals = {k: totals[k] + shell[k] for k in RESOURCES}
    styles = ["block", "ultra"] if (board.resources or {}).get("URAM") else ["block"]
    deep = []
    for node in hw_nodes(fifo_model):
        inst = getCustomOp(node)
        if node.op_type == FIFO_OP and node.name not in keep and \
                inst.resolve_ram_style() in ("block", "ultra"):
            deep.append((inst.get_nodeattr("depth") * inst.get_instream_width(), node, inst))
    for _, node, inst in sorted(deep, key=lambda d: (-d[0], d[1].name)):
        best = None
        for style in styles:
            inst.set_nodeattr("ram_style", style)
            row = layer_estimate(node, fifo_model, board.part)
            trial = {k: totals[k] - rows[node.name][k] + row[k] for k in RESOURCES}
            if best is None or _score(trial, board) < best[0]:
                best = (_score(trial, board), style, row, trial)
        inst.set_nodeattr("ram_style", best[1])
        rows[node.name] = best[2]
        totals = best[3]


def fold_at(model: ModelWrapper, fps: float, clk_ns: float, board: Board):
    """``model`` folded for ``fps`` with the best memory options; its rows and totals."""
    from hw_gen.folding import fold_for_cycles, target_cycles

    folded = fold_for_cycles(ModelWrapper(model.model.__deepcopy__()),
                             target_cycles(fps, clk_ns))
    rows = _estimates(folded, board)
    shell = _shell(folded, board)
    totals = {k: sum(r[k] for r in rows.values()) + shell[k] for k in RESOURCES}
    budget = max([target_cycles(fps, clk_ns)] + [r["cycles"] for r in rows.values()])
    choose_options(folded, board, rows, totals, budget)
    return folded, rows, totals


def dma_fps(model: ModelWrapper, board: Board, clk_ns: float) -> float:
    from hw_gen.hwmodel.estimate import dma_cycles

    cycles = max(dma_cycles(model, board.memory_port_bits).values())
    return 1e9 / clk_ns / cycles


def achieved_fps(rows: dict[str, dict], clk_ns: float, dma_limit: float) -> float:
    return min(1e9 / clk_ns / max(r["cycles"] for r in rows.values()), dma_limit)


def fold_to_board(model: ModelWrapper, board: Board, clk_ns: float, target_fps: float,
                  fit: float = DEFAULT_FIT, strict: bool = False,
                  reserve: dict[str, int] | None = None) -> FoldResult:
    """Fold ``model`` for ``target_fps`` or the highest rate below it that fits ``board``,
    with ``reserve`` (e.g. the FIFOs of an earlier sizing) counted on top of layers and shell."""
    if not 0 < fit <= 1:
        raise HwGenError(f"--fit must be in (0, 1], not {fit:g}")
    if board.resources is None:
        raise HwGenError(f"board {board.name}: no resource table for part {board.part}")
    limit = dma_fps(model, board, clk_ns)
    goal = min(target_fps, limit)

    reserve = reserve or {}

    def fits(totals):
        with_reserve = {k: totals[k] + reserve.get(k, 0) for k in RESOURCES}
        return all(u <= fit for u in _utilisation(with_reserve, board).values())

    def result(fold, reason):
        model_, rows, totals = fold
        fps = achieved_fps(rows, clk_ns, limit)
        if fps >= target_fps * (1 - 1e-9):
            return FoldResult(model_, fps, target_fps, _utilisation(totals, board))
        message = (f"{board.name} cannot reach {target_fps:g} frames/s at {1000 / clk_ns:g} MHz:"
                   f" folded for {fps:.1f} frames/s; {reason}")
        if strict:
            raise HwGenError(message + " (--strict-fps)")
        return FoldResult(model_, fps, target_fps, _utilisation(totals, board),
                          "warning: " + message)

    fold = fold_at(model, goal, clk_ns, board)
    if fits(fold[2]):
        if achieved_fps(fold[1], clk_ns, limit) >= limit * (1 - 1e-9):
            reason = (f"the DMA on the {board.memory_port_bits}-bit memory port allows "
                      f"{limit:.1f} frames/s")
        else:
            slowest = _limiting_layer(fold[0], fold[1])
            reason = (f"{slowest['node']} stays at {slowest['cycles']} cycles per frame (the "
                      "most parallel folding FINN allows it)")
        return result(fold, reason)
    low = 1e9 / clk_ns / max(1, max(r["cycles"] for r in _estimates(model, board).values()))
    best = (low, fold_at(model, low, clk_ns, board))
    if not fits(best[1][2]):
        raise HwGenError(f"{board.name} cannot hold the network at any rate: at {low:.3g} "
                         f"frames/s, with the folding and memories that use least, "
                         f"{_over(best[1][1], best[1][2], board, fit, reserve)}")
    failing = (goal, fold)
    for _ in range(BISECTION_STEPS):
        mid = math.sqrt(best[0] * failing[0])
        trial = fold_at(model, mid, clk_ns, board)
        if fits(trial[2]):
            best = (mid, trial)
        else:
            failing = (mid, trial)
    # the least parallel folding that reaches the same rate
    same = fold_at(model, achieved_fps(best[1][1], clk_ns, limit), clk_ns, board)
    if fits(same[2]) and achieved_fps(same[1], clk_ns, limit) >= achieved_fps(best[1][1], clk_ns,
                                                                               limit):
        best = (best[0], same)
    return result(best[1], "above it " + _over(failing[1][1], failing[1][2], board, fit, reserve))


def _limiting_layer(model: ModelWrapper, rows: dict[str, dict]) -> dict:
    """Of the layers at the largest cycle count, the first with no faster folding (the others
    were only relaxed to its rate); the first of them when none can be told."""
    period = max(r["cycles"] for r in rows.values())
    slowest = [r for r in rows.values() if r["cycles"] == period]
    for row in slowest:
        node = model.get_node_from_name(row["node"])
        inst = getCustomOp(node)
        faster = layer_options.folding_settings(node, inst, period - 1, span=math.inf)
        if faster == [{}] and (layer_options.is_mvau(node) or hasattr(inst, "folding_options")):
            return row
    return slowest[0]


def _over(rows: dict[str, dict], totals: dict[str, int], board: Board, fit: float,
          reserve: dict[str, int] | None = None) -> str:
    util = _utilisation({k: totals[k] + (reserve or {}).get(k, 0) for k in RESOURCES}, board)
    key = max(RESOURCES, key=lambda k: util[k])
    layer = max(rows.values(), key=lambda r: r[key])
    return (f"{key} would reach {100 * util[key]:.0f}% (limit {100 * fit:.0f}%), most of it in "
            f"{layer['node']} ({layer[key]} {key})")
