"""Records of a three-way check: per step, per tensor, per engine; a text summary and JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

LABELS = "labels"
EQUAL = "equal"


@dataclass
class TensorCheck:
    """One graph tensor at one step against the reference, in each engine that ran.

    ``engines`` maps "finn" / "sim" to "equal" or what went wrong (a mismatch with its
    count and first position, or why the tensor could not be decoded).
    """

    activation: str  # activation id, or "labels" for the labels output
    tensor: str
    how: str
    size: int
    engines: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.engines) and all(v == EQUAL for v in self.engines.values())


@dataclass
class StepCheck:
    step: str
    ran: list[str] = field(default_factory=list)  # engines that executed the step graph
    not_run: dict[str, str] = field(default_factory=dict)  # engine -> why not (no failure)
    tensors: list[TensorCheck] = field(default_factory=list)
    fused: dict[str, str] = field(default_factory=dict)  # activation id -> reason
    errors: list[str] = field(default_factory=list)  # failures other than mismatches
    notes: list[str] = field(default_factory=list)

    def activation_checks(self) -> list[TensorCheck]:
        return [t for t in self.tensors if t.activation != LABELS]

    @property
    def activations_compared(self) -> int:
        return len({t.activation for t in self.activation_checks()})

    @property
    def tensors_compared(self) -> int:
        return len(self.activation_checks())

    @property
    def integers_compared(self) -> int:
        return sum(t.size for t in self.activation_checks())

    @property
    def passed(self) -> bool:
        return bool(self.ran) and not self.errors and all(t.passed for t in self.tensors)

    def failures(self) -> list[str]:
        out = list(self.errors)
        for t in self.tensors:
            out += [f"{t.activation} at tensor {t.tensor} ({engine}): {verdict}"
                    for engine, verdict in t.engines.items() if verdict != EQUAL]
        return [f"step {self.step}: {f}" for f in out]


@dataclass
class ThreeWayResult:
    reference: str  # "torch" or "qonnx"
    activations: dict[str, str]  # id -> where the reference integers came from
    steps: list[StepCheck]
    frames: int
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(s.passed for s in self.steps)

    def failures(self) -> list[str]:
        return [f for s in self.steps for f in s.failures()]

    def table(self) -> str:
        """One line per step: engines, activations/tensors/integers compared, verdict."""
        head = (f"{'step':<18} {'ran':<9} {'acts':>4} {'tensors':>7} {'integers':>10} "
                f"{'labels':>6}  result")
        lines = [head, "-" * len(head)]
        for s in self.steps:
            labels = next((t for t in s.tensors if t.activation == LABELS), None)
            lines.append(
                f"{s.step:<18} {'+'.join(s.ran) or '-':<9} {s.activations_compared:>4} "
                f"{s.tensors_compared:>7} {s.integers_compared:>10} "
                f"{'yes' if labels is not None else '-':>6}  {'pass' if s.passed else 'FAIL'}"
            )
        return "\n".join(lines)

    def summary(self) -> str:
        ref = "torch" if self.reference == "torch" else "the QONNX graph (torch's stand-in)"
        lines = [f"three-way check against {ref}: {len(self.activations)} quantized activations, "
                 f"{self.frames} frame(s): {'PASS' if self.passed else 'FAIL'}", self.table()]
        skipped: dict[tuple[str, str], list[str]] = {}
        for s in self.steps:
            for engine, why in s.not_run.items():
                skipped.setdefault((engine, why), []).append(s.step)
        for (engine, why), steps in skipped.items():
            lines.append(f"{engine} not run at {', '.join(steps)}: {why}")
        fused = {k: v for s in self.steps for k, v in s.fused.items()}
        if fused:
            lines.append("fused: " + "; ".join(f"{k}: {v}" for k, v in sorted(fused.items())))
        lines += self.notes
        lines += sorted({f"{', '.join(s.step for s in self.steps if n in s.notes)}: {n}"
                         for step in self.steps for n in step.notes})
        lines += self.failures()[:20]
        return "\n".join(lines)

    def to_json(self) -> dict:
        data = asdict(self)
        data["passed"] = self.passed
        for step, s in zip(data["steps"], self.steps):
            step.update(passed=s.passed, activations_compared=s.activations_compared,
                        tensors_compared=s.tensors_compared,
                        integers_compared=s.integers_compared)
        return data

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n")
        return path
