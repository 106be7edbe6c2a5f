"""Shared by the lowering tests: export a Brevitas net, lower it, compare FINN with torch."""

from __future__ import annotations

from pathlib import Path

import torch
from brevitas import nn as qnn
from brevitas.export import export_qonnx
from brevitas.quant import SignedBinaryWeightPerTensorConst
from torch import nn

from brevitas_models.random_nets import QSpec, make_act
from brevitas_models.stock_nets import _randomize_bn

from hw_gen.lowering import LoweringResult, lower
from hw_gen.verify import TorchComparison, compare_finn_with_torch
from tests.lowering_nets import pixels  # noqa: F401 - shared with the fix-up tests


def random_bn(channels: int, seed: int) -> nn.BatchNorm2d:
    """A batch norm with random statistics (thresholds differ per channel)."""
    bn = nn.BatchNorm2d(channels)
    _randomize_bn(bn, torch.Generator().manual_seed(seed))
    return bn


def quant_block(cin: int, cout: int, k: int, q: QSpec, seed: int, padding: int = 0) -> nn.Sequential:
    """Binary-weight conv (zero padding), random batch norm, the activation of QSpec ``q``."""
    return nn.Sequential(
        qnn.QuantConv2d(cin, cout, k, padding=padding, bias=False,
                        weight_quant=SignedBinaryWeightPerTensorConst),
        random_bn(cout, seed), make_act(q))


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
