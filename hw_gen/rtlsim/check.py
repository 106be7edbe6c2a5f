"""One RTL layer checked against sim: two runs of its Verilated model on the integers sim says
reach it, compared integer for integer with sim's output, and its cycles measured.

- free-flowing (source always valid, sink always ready): the cycles. Two copies of the input
  go in back to back: the first output and the last output of the first frame are cycle
  numbers counted from the first cycle the input is offered (0); the steady-state interval is
  the distance between the two frames' last outputs.
- randomized backpressure (seeded valid and ready): the comparison the step reports.
Both runs' outputs must equal sim's.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hw_gen.cppsim import compare
from hw_gen.rtlsim.layer import RtlLayer
from hw_gen.rtlsim.testbench import Backpressure, Trace, run_model

FRAMES = 2  # copies of the input per run
RANDOM_BACKPRESSURE = Backpressure(p_valid=70, p_ready=60, seed=17)


@dataclass
class Cycles:
    first_output: int
    last_output: int
    interval: int  # steady state: cycles per frame

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class LayerCheck:
    layer: str
    op_type: str
    passed: bool
    integers: int  # compared under randomized backpressure
    mismatch: str = ""
    cycles: Cycles | None = None
    lanes: int = 1
    lane_asymmetric_beats: int = 0  # input beats whose lanes, reversed, differ
    extra_beats: int = 0  # beats the layer offered after the expected ones (next frame's start)
    model: dict = field(default_factory=dict)  # compile key, seconds, cached

    def summary(self) -> str:
        if not self.passed:
            return f"{self.layer}: {self.mismatch}"
        return f"{self.layer}: {self.integers} integers equal"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["cycles"] = self.cycles.as_dict() if self.cycles else None
        return d


def lane_asymmetric_beats(x: np.ndarray, lanes: int) -> int:
    """Input beats whose lane order matters: reversing their lanes changes them."""
    words = np.asarray(x).reshape(-1, lanes)
    return int(np.count_nonzero(np.any(words != words[:, ::-1], axis=1))) if lanes > 1 else 0


def link_data_files(layer: RtlLayer, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    for name, source in layer.data_files.items():
        target = run_dir / name
        target.unlink(missing_ok=True)
        os.symlink(source.resolve(), target)


def _compare(layer: RtlLayer, trace: Trace, expected: np.ndarray, run: str) -> str:
    got = trace.outputs.reshape(expected.shape)
    miss = compare(f"{layer.out.name} ({run})", expected, got)
    return miss.describe() if miss else ""


def check_layer(layer: RtlLayer, binary: Path, run_dir: Path, x: np.ndarray,
                expected: np.ndarray, lsb_first: bool = True) -> LayerCheck:
    """Run ``binary`` (``layer``'s model) on ``x`` and compare with ``expected`` (sim)."""
    link_data_files(layer, run_dir)
    xs = np.concatenate([np.asarray(x)] * FRAMES)
    exp = np.concatenate([np.asarray(expected).astype(np.int64)] * FRAMES)
    beats = exp.size // layer.out.lanes
    check = LayerCheck(layer.name, layer.op_type, True, 0, lanes=layer.inp.lanes,
                       lane_asymmetric_beats=lane_asymmetric_beats(x, layer.inp.lanes))
    free = run_model(binary, run_dir, xs, layer.inp, layer.out, beats, Backpressure(),
                     layer.name, lsb_first)
    per_frame = beats // exp.shape[0]
    last = free.stamps[per_frame - 1 :: per_frame]
    check.cycles = Cycles(int(free.stamps[0]), int(last[0]),
                          int(last[1] - last[0]) if last.size > 1 else int(last[0]) + 1)
    check.extra_beats = free.extra
    randomized = run_model(binary, run_dir, xs, layer.inp, layer.out, beats,
                           RANDOM_BACKPRESSURE, layer.name, lsb_first)
    for run, trace in (("free-flowing", free), ("randomized backpressure", randomized)):
        mismatch = _compare(layer, trace, exp, run)
        if mismatch:
            check.passed, check.mismatch = False, mismatch
            break
    check.integers = int(exp.size)
    return check
