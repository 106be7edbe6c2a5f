"""Shared by the lowering tests: export a Brevitas net, lower it, compare FINN with torch."""

from __future__ import annotations

from pathlib import Path

import torch
from brevitas.export import export_qonnx

from hw_gen.lowering import LoweringResult, lower
from hw_gen.verify import TorchComparison, compare_finn_with_torch


def pixels(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Random 8-bit images k/255."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=gen).float() / 255.0


def lower_and_compare(
    model: torch.nn.Module, x: torch.Tensor, out_dir: Path, stop_after: str = "widths"
) -> tuple[LoweringResult, TorchComparison]:
    """Export ``model`` (eval mode) on ``x[:1]``, lower it to ``stop_after`` and compare FINN's
    execution with torch on all of ``x``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "model.onnx"
    export_qonnx(model.eval(), x[:1], str(path), dynamo=False)
    result = lower(path, out_dir / "lowered", stop_after=stop_after)
    return result, compare_finn_with_torch(result.model, model, x.numpy())
