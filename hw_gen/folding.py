"""Folding (PE/SIMD) of every hardware layer, FINN's and ours.

FINN's SetFolding folds the op types it lists and only warns about the rest, so this module
owns folding: SetFolding for FINN's layers, then a search over the legal values of each of
our layers' folding attributes (the layer class declares them), to the same cycle target.
A FINN folding-config JSON (node name -> attributes) can be applied instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_gen.errors import HwGenError


def target_cycles(target_fps: float, clk_ns: float) -> int:
    if target_fps <= 0:
        raise HwGenError(f"target frames/s must be positive, not {target_fps:g}")
    return max(1, int(1e9 / clk_ns / target_fps))


def is_hw(node) -> bool:
    """FINN's hardware layers and ours (registered in FINN's domain so its passes see them)."""
    return node.domain.startswith("finn.custom_op.fpgadataflow")


def fold_own_layers(model: ModelWrapper, cycles: int | None) -> ModelWrapper:
    """Fold our own layers: each offers ``folding_options()`` (attribute -> legal values in
    increasing parallelism); from the least parallel setting, raise one attribute after the
    other (in the order given) until ``cycles`` is met."""
    for node in model.graph.node:
        inst = getCustomOp(node) if is_hw(node) else None
        options = getattr(inst, "folding_options", None)
        if options is None:
            continue
        choices = options()
        for attr_name, values in choices.items():
            inst.set_nodeattr(attr_name, values[0])
        for attr_name, values in choices.items():
            if cycles is None:
                continue
            for value in values:
                inst.set_nodeattr(attr_name, value)
                if inst.get_exp_cycles() <= cycles:
                    break
    return model


MVAU_MAX_SIMD_FOLD = 1024  # FINN's HLS MVAU needs SIMD >= MW / 1024


def legalize_mvau_simd(model: ModelWrapper) -> ModelWrapper:
    """Raise each HLS matrix-vector unit's SIMD to the smallest divisor of MW that FINN's HLS
    code generation accepts (SIMD >= MW / 1024) when the folding left it below."""
    for node in model.graph.node:
        if not node.op_type.startswith("MVAU") or not is_hw(node):
            continue
        inst = getCustomOp(node)
        mw, simd = inst.get_nodeattr("MW"), inst.get_nodeattr("SIMD")
        if simd * MVAU_MAX_SIMD_FOLD >= mw:
            continue
        legal = next(d for d in range(simd, mw + 1) if mw % d == 0 and d * MVAU_MAX_SIMD_FOLD >= mw)
        inst.set_nodeattr("SIMD", legal)
    return model


def fold_for_cycles(model: ModelWrapper, cycles: int | None) -> ModelWrapper:
    """Every layer at the least parallelism that meets ``cycles`` per frame (None: least)."""
    # ours first: SetFolding's second pass relaxes to the slowest layer it sees, ours included
    model = fold_own_layers(model, cycles)
    if cycles is not None:
        from finn.transformation.fpgadataflow.set_folding import SetFolding

        model = model.transform(SetFolding(target_cycles_per_frame=cycles,
                                           two_pass_relaxation=True))
    return legalize_mvau_simd(model)


def apply_folding(
    model: ModelWrapper,
    target_fps: float | None,
    clk_ns: float,
    config: str | Path | None = None,
    board: str | None = None,
    fit: float = 0.8,
    strict_fps: bool = False,
    facts: dict | None = None,
) -> ModelWrapper:
    """Fold to a frames/s target (least parallelism when None), or apply a folding config.
    With a ``board`` the target is folded to the board (:mod:`hw_gen.hwmodel.fold_search`):
    the best rate up to the target that fits, its warning recorded in ``facts``."""
    if config is not None:
        from hw_gen.folding_config import apply_folding_config

        return apply_folding_config(model, config)
    if target_fps is not None:
        target_cycles(target_fps, clk_ns)  # checks the target
    if board is not None and target_fps is not None:
        from hw_gen.boards import get_board
        from hw_gen.hwmodel.fold_search import fold_to_board

        result = fold_to_board(model, get_board(board), clk_ns, target_fps, fit, strict_fps)
        if facts is not None:
            facts["folded_fps"] = result.fps
            facts["fold_warning"] = result.warning
            facts["fold_utilisation"] = result.utilisation
        return result.model
    cycles = target_cycles(target_fps, clk_ns) if target_fps is not None else None
    return fold_for_cycles(model, cycles)


def write_folding_config(model: ModelWrapper, path: Path) -> dict:
    """FINN's folding-config JSON of ``model`` (node name -> folding and memory attributes,
    FIFO depths included): passed back with ``--folding`` it reproduces the build."""
    from hw_gen.hwmodel.estimate import folding_of

    config = {}
    for node in model.graph.node:
        if is_hw(node) and not node.op_type.startswith("StreamingDataWidthConverter"):
            attrs = folding_of(getCustomOp(node))
            if attrs:
                config[node.name] = attrs
    Path(path).write_text(json.dumps(config, indent=1, sort_keys=True))
    return config
