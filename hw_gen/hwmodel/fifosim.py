"""Cycle-level model of the folded dataflow graph, vectorised over words.

Every FIFO of the graph (FINN inserts one on every stream) starts unbounded; each layer runs
its schedule (:mod:`hw_gen.hwmodel.schedule`) frame after frame, an iteration stalling until
the input word it reads has arrived (max-plus recurrence: the stall carried to iteration t is
the running maximum of ``arrival - iteration`` over the reads up to t). A FIFO's occupancy is
what its producer has written minus what its consumer has read; the largest occupancy over
the frames is the depth at which that FIFO never stalls its producer, so with every FIFO at
least that deep the graph runs exactly this schedule.

Two runs of the model:

- *rate*: the input arrives spread evenly over the bottleneck's frame period (the rate the
  estimate promises); the largest occupancies are the depths that keep that rate;
- *tokens*: the input arrives so slowly that only dependencies order the words: a one-input
  layer reads every word as it arrives and writes as soon as the words it needs are in; a
  layer with several inputs (concat, add, attention) still reads them in its own order. A
  FIFO's largest occupancy is then what the graph's dependencies force it to hold (the skip of
  an encoder-decoder holds what arrives while the long branch waits for its line buffers):
  below that depth the graph deadlocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_gen.hwmodel.dataflow import FIFO_OP
from hw_gen.hwmodel.schedule import Schedule, layer_schedule, words

MIN_FIFO_DEPTH = 2  # FINN's StreamingFIFO cannot be shallower


@dataclass
class StreamDepth:
    fifo: str
    producer: str
    consumer: str
    width: int
    deadlock_free: int  # smallest depth that does not deadlock
    rate: int  # depth that keeps the estimated rate (what the build uses), >= 2


@dataclass
class ModelRun:
    occupancy: dict[str, int]  # FIFO node -> largest occupancy
    last_output: int  # time of the first frame's last output word
    period: float  # measured cycles per frame in the last frame


def _frames(a: np.ndarray, T: int, frames: int) -> np.ndarray:
    return (a[None, :] + (np.arange(frames, dtype=np.int64) * T)[:, None]).reshape(-1)


def _run_layer(sched: Schedule, arrivals: list[np.ndarray], frames: int,
               dependency_only: bool = False):
    """Actual read times of each input and write times of each output. ``dependency_only``:
    a one-input layer reads each word as it arrives and writes as soon as the words a write
    needs are in (no static order of its iterations)."""
    if dependency_only and sched.need is not None:  # still one word per cycle each side
        reads = _one_per_cycle(arrivals[0])
        need = _frames(sched.need - 1, len(sched.reads[0]), frames)
        return [reads], [_one_per_cycle(reads[need] + 1)]
    reads = [_frames(r, sched.T, frames) for r in sched.reads]
    if reads:
        r_all = np.concatenate(reads)
        slack = np.concatenate([a - r for a, r in zip(arrivals, reads)])
        order = np.argsort(r_all, kind="stable") if len(reads) > 1 else np.arange(len(r_all))
        r_sorted = r_all[order]
        stall = np.maximum.accumulate(np.maximum(slack[order], 0))
        read_times = np.empty_like(r_all)
        read_times[order] = r_sorted + stall
        split = np.cumsum([len(r) for r in reads])[:-1]
        read_times = np.split(read_times, split)
    else:
        r_sorted, stall, read_times = np.zeros(1, np.int64), np.zeros(1, np.int64), []
    writes = []
    for w in sched.writes:
        w = _frames(w, sched.T, frames)
        idx = np.searchsorted(r_sorted, w, side="right") - 1
        writes.append(w + np.where(idx >= 0, stall[np.maximum(idx, 0)], 0) + 1)
    return read_times, writes


def _one_per_cycle(t: np.ndarray) -> np.ndarray:
    k = np.arange(len(t), dtype=np.int64)
    return np.maximum.accumulate(t - k) + k


def hw_nodes(model: ModelWrapper) -> list:
    return [n for n in model.graph.node if n.domain.startswith("finn.custom_op.fpgadataflow")]


def run_model(model: ModelWrapper, schedules: dict[str, Schedule], word_spacing: float,
              frames: int, dependency_only: bool = False) -> ModelRun:
    """Run the graph with input word k of frame f arriving at ``(f*n + k) * word_spacing``."""
    times: dict[str, np.ndarray] = {}  # tensor -> write (arrival) times of its words
    read_at: dict[str, np.ndarray] = {}  # tensor -> read times by its consumer
    fifo_io = {}
    for node in hw_nodes(model):
        if node.op_type == FIFO_OP:
            src = node.input[0]
            if src not in times:
                times[src] = _spaced(_in_words(node) * frames, word_spacing)
            times[node.output[0]] = times[src] + (0 if dependency_only else 1)
            fifo_io[node.name] = (src, node.output[0])
            continue
        sched = schedules[node.name]
        ins = [t for t in node.input if model.get_initializer(t) is None]
        for t, r in zip(ins, sched.reads):
            if t not in times:
                times[t] = _spaced(len(r) * frames, word_spacing)
        read_times, writes = _run_layer(sched, [times[t] for t in ins], frames, dependency_only)
        for t, rt in zip(ins, read_times):
            read_at[t] = rt
        for t, w in zip(node.output, writes):
            times[t] = w
    occupancy = {}
    for name, (src, dst) in fifo_io.items():
        written = times[src]
        read = read_at.get(dst, times[dst])  # a graph output is read as it arrives
        # words in the FIFO once everything at that time has happened
        occ = (np.searchsorted(written, written, side="right")
               - np.searchsorted(read, written, side="right"))
        occupancy[name] = int(max(occ.max(initial=0), 0))
    out = times[model.graph.output[0].name]
    per_frame = len(out) // frames
    last = int(out[per_frame - 1])
    period = float(out[-1] - out[len(out) - per_frame - 1]) if frames > 1 else float(last)
    return ModelRun(occupancy, last, period)


def _spaced(n: int, spacing: float) -> np.ndarray:
    return np.floor(np.arange(n) * spacing).astype(np.int64)


def _in_words(node) -> int:
    return words(getCustomOp(node).get_folded_input_shape())


def size_fifos(model: ModelWrapper, period: float, frames: int = 3) -> tuple[list[StreamDepth],
                                                                              ModelRun]:
    """Depths of every FIFO of the FIFO'd graph ``model`` at ``period`` cycles per frame."""
    schedules = {n.name: layer_schedule(n, model) for n in hw_nodes(model)
                 if n.op_type != FIFO_OP}
    first_fifo = next(n for n in hw_nodes(model) if n.op_type == FIFO_OP)
    n_in = _in_words(first_fifo)
    rate = run_model(model, schedules, period / n_in, frames)
    slow_spacing = 4.0 * sum(s.T for s in schedules.values()) + 1
    tokens = run_model(model, schedules, slow_spacing, 2, dependency_only=True)
    joined = reconvergent_fifos(model)
    producers = {t: n.name for n in model.graph.node for t in n.output}
    consumers = {t: n.name for n in model.graph.node for t in n.input}
    depths = []
    for node in hw_nodes(model):
        if node.op_type != FIFO_OP:
            continue
        free = max(1, tokens.occupancy[node.name]) if node.name in joined else 1
        depths.append(StreamDepth(
            fifo=node.name,
            producer=producers.get(node.input[0], "input"),
            consumer=consumers.get(node.output[0], "output"),
            width=int(getCustomOp(node).get_instream_width()),
            deadlock_free=free,
            rate=max(MIN_FIFO_DEPTH, free, rate.occupancy[node.name]),
        ))
    return depths, rate


def reconvergent_fifos(model: ModelWrapper) -> set[str]:
    """FIFOs on a branch that meets another again (an undirected cycle: a fork and a join).
    Elsewhere a stream cannot deadlock at any depth: its producer only waits."""
    nodes = hw_nodes(model)
    producer = {t: i for i, n in enumerate(nodes) for t in n.output}
    edges = [(producer[t], i) for i, n in enumerate(nodes) for t in n.input if t in producer]
    adjacency: dict[int, list[tuple[int, int]]] = {i: [] for i in range(len(nodes))}
    for e, (a, b) in enumerate(edges):
        adjacency[a].append((b, e))
        adjacency[b].append((a, e))

    def connected_without(skip: int, a: int, b: int) -> bool:
        seen, todo = {a}, [a]
        while todo:
            for nxt, e in adjacency[todo.pop()]:
                if e != skip and nxt not in seen:
                    if nxt == b:
                        return True
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    return {nodes[b].name for e, (a, b) in enumerate(edges)
            if nodes[b].op_type == FIFO_OP and connected_without(e, a, b)}
