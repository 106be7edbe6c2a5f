"""Runs the lowering steps in order, saving each intermediate model.

``OUT/steps/NN_<name>.onnx`` is the model after step NN; ``OUT/steps/context.json`` holds what
the steps recorded. A run can stop after any step and a later run can resume from the last
saved step.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from finn.util.exception import FINNUserError
from qonnx.core.modelwrapper import ModelWrapper

from hw_gen.errors import HwGenError
from hw_gen.fingerprint import (
    differences,
    lowering_fingerprint,
    read_fingerprint,
    write_fingerprint,
)
from hw_gen.finn_adapter import finn_log, init_finn
from hw_gen.lowering import steps as S
from hw_gen.lowering.exact_identity import exact_identities

STEPS: list[tuple[str, S.StepFn]] = [
    ("qonnx_cleanup", S.qonnx_cleanup),
    ("input_interface", S.input_interface),
    ("qonnx_to_finn", S.qonnx_to_finn),
    ("tidy", S.tidy),
    ("multi_branch_upsampling", S.multi_branch_upsampling),
    ("upsampling", S.upsampling),
    ("attention", S.attention_layers),
    ("binary_padding", S.binary_padding),
    ("streamline", S.streamline),
    ("output_interface", S.output_interface),
    ("to_hw", S.to_hw),
    ("widths", S.widths),
    ("specialize", S.specialize),
    ("fold", S.fold),
]
STEP_NAMES = [name for name, _ in STEPS]

Checker = Callable[[str, ModelWrapper], dict | None]


@dataclass
class StepRecord:
    name: str
    seconds: float
    path: Path
    check: dict | None = None


@dataclass
class LoweringRun:
    model: ModelWrapper
    context: S.LoweringContext
    records: list[StepRecord] = field(default_factory=list)
    last_step: str | None = None

    @property
    def finished(self) -> bool:
        return self.last_step == STEP_NAMES[-1]


def step_path(out_dir: str | Path, name: str) -> Path:
    return Path(out_dir) / "steps" / f"{STEP_NAMES.index(name):02d}_{name}.onnx"


def run_lowering(
    model_path: str | Path,
    out_dir: str | Path,
    fpga_part: str,
    outputs: str = "both",
    stop_after: str | None = None,
    resume: bool = False,
    checker: Checker | None = None,
    progress: Callable[[str], None] | None = None,
    clk_ns: float = 10.0,
    target_fps: float | None = None,
    folding_config: str | None = None,
    fold_board: dict | None = None,
    board: str | None = None,
) -> LoweringRun:
    """Lower ``model_path`` (a QONNX export) step by step into ``out_dir``."""
    out = Path(out_dir)
    init_finn(out / "finn_build")
    for name in (stop_after,):
        if name is not None and name not in STEP_NAMES:
            raise HwGenError(f"unknown step '{name}'; steps are: {', '.join(STEP_NAMES)}")
    if outputs not in ("labels", "logits", "both"):
        raise HwGenError(f"outputs must be labels, logits or both, not '{outputs}'")
    (out / "steps").mkdir(parents=True, exist_ok=True)
    ctx_path = out / "steps" / "context.json"
    ctx = S.LoweringContext(fpga_part=fpga_part, outputs=outputs, clk_ns=clk_ns,
                            target_fps=target_fps, folding_config=folding_config,
                            **(fold_board or {}))
    start = 0
    last = None
    model = load_model(model_path)
    fingerprint = lowering_fingerprint(model_path, board, fpga_part, clk_ns, target_fps,
                                       folding_config, outputs)
    fingerprint.update({k: v for k, v in (fold_board or {}).items() if k != "board"})
    if resume:
        changed = differences(read_fingerprint(out / "steps"), fingerprint)
        if changed:
            print(f"hw-gen: --resume: {out / 'steps'} does not match this run "
                  f"({', '.join(changed)}); starting over", file=sys.stderr)
            resume = False
    if resume:
        done = [n for n in STEP_NAMES if step_path(out, n).exists()]
        if done and ctx_path.exists():
            last = done[-1]
            if stop_after is not None and STEP_NAMES.index(stop_after) < STEP_NAMES.index(last):
                raise HwGenError(f"cannot resume: step '{last}' already ran after '{stop_after}'")
            model = ModelWrapper(str(step_path(out, last)))
            ctx.facts = json.loads(ctx_path.read_text())
            start = STEP_NAMES.index(last) + 1
    else:
        for stale in (out / "steps").glob("*.onnx"):
            stale.unlink()
        write_fingerprint(out / "steps", fingerprint)
    run = LoweringRun(model, ctx, last_step=last)
    for name, fn in STEPS[start:]:
        if progress:
            progress(name)
        t0 = time.perf_counter()
        with finn_log(out / "steps" / "finn.log"), exact_identities():
            try:
                model = fn(model, ctx)
            except FINNUserError as exc:
                raise HwGenError(f"step {name}: FINN: {exc}") from exc
        seconds = time.perf_counter() - t0
        path = step_path(out, name)
        model.save(str(path))
        ctx_path.write_text(json.dumps(ctx.facts, indent=1, sort_keys=True))
        record = StepRecord(name, seconds, path)
        if checker is not None:
            record.check = checker(name, model)
        run.records.append(record)
        run.model = model
        run.last_step = name
        if name == stop_after:
            break
    return run


def load_model(model_path: str | Path) -> ModelWrapper:
    """An ONNX model from a file; a one-line error for a missing or unreadable file."""
    path = Path(model_path)
    if not path.exists():
        raise HwGenError(f"model file not found: {path}")
    try:
        return ModelWrapper(str(path))
    except Exception as exc:  # onnx raises several types for a damaged file
        raise HwGenError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from exc
