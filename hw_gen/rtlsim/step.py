"""The build step ``rtlsim``: every FINN RTL layer of the specialized graph, compiled with
Verilator from the sources code generation wrote and run by our testbench on the integers sim
says reach it, under randomized backpressure; outputs equal to sim's, integer for integer;
cycles measured beside FINN's estimate."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hw_gen.errors import HwGenError
from hw_gen.rtlsim.check import LayerCheck, check_layer
from hw_gen.rtlsim.coverage import classify, describe
from hw_gen.rtlsim.layer import TOP, RtlLayer, describe_layer
from hw_gen.rtlsim.testbench import render_testbench
from hw_gen.rtlsim.verilator import Model, compile_model, find_verilator, model_key

if TYPE_CHECKING:
    from qonnx.core.modelwrapper import ModelWrapper

JOBS = 2


def _streams(model: ModelWrapper, node) -> tuple[list[str], list[str]]:
    inputs = [t for t in node.input if t and model.get_initializer(t) is None]
    return inputs, list(node.output)


def _tb_sources(layer: RtlLayer) -> dict[str, str]:
    return {"tb.cpp": render_testbench(layer.top, layer.inp, layer.out)}


def compile_layers(layers: list[RtlLayer], jobs: int = JOBS,
                   progress: bool = False) -> dict[str, Model]:
    """One Verilator model per distinct layer configuration, built in parallel; layer name ->
    model."""
    from tqdm import tqdm

    exe = find_verilator()
    by_key: dict[str, RtlLayer] = {}
    key_of: dict[str, str] = {}
    for layer in layers:
        key = model_key(exe, layer.sources, _tb_sources(layer), layer.top)
        by_key.setdefault(key, layer)
        key_of[layer.name] = key
    models: dict[str, Model] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool, \
            tqdm(total=len(by_key), desc="verilator", unit="model", leave=False,
                 disable=not progress) as bar:
        futures = {key: pool.submit(compile_model, lay.sources, _tb_sources(lay), lay.top,
                                    lay.name) for key, lay in by_key.items()}
        for key, future in futures.items():
            models[key] = future.result()
            bar.update(1)
    return {name: models[key] for name, key in key_of.items()}


def check_layers(model: ModelWrapper, tensors: dict, ip_dir: Path, run_dir: Path,
                 names: list[str] | None = None, jobs: int = JOBS, lsb_first: bool = True,
                 progress: bool = False) -> tuple[list[LayerCheck], dict[str, str]]:
    """Check the RTL layers ``names`` (default: all) of ``model``; returns the checks and the
    layers not simulated, with the reason."""
    from finn.util.fpgadataflow import is_rtl_node
    from tqdm import tqdm

    layers, skipped, io = [], {}, {}
    for node in model.graph.node:
        if not is_rtl_node(node) or (names is not None and node.name not in names):
            continue
        ins, outs = _streams(model, node)
        if len(ins) != 1 or len(outs) != 1:
            skipped[node.name] = f"{len(ins)} input and {len(outs)} output streams (the " \
                                 "testbench drives one of each)"
            continue
        layers.append(describe_layer(node, ip_dir, TOP))
        io[node.name] = (np.asarray(tensors[ins[0]]), np.asarray(tensors[outs[0]]))
    models = compile_layers(layers, jobs, progress)

    def one(layer: RtlLayer) -> LayerCheck:
        x, y = io[layer.name]
        check = check_layer(layer, models[layer.name].path, run_dir / layer.name, x, y,
                            lsb_first)
        m = models[layer.name]
        check.model = {"key": m.key[:20], "compile_seconds": round(m.seconds, 2),
                       "cached": m.cached}
        return check

    with ThreadPoolExecutor(max_workers=jobs) as pool, \
            tqdm(total=len(layers), desc="rtl simulation", unit="layer", leave=False,
                 disable=not progress) as bar:
        checks = []
        for check in pool.map(one, layers):
            checks.append(check)
            bar.update(1)
    return checks, skipped


def _estimates(model: ModelWrapper, names: list[str]) -> dict[str, int]:
    from qonnx.custom_op.registry import getCustomOp

    return {n: int(getCustomOp(model.get_node_from_name(n)).get_exp_cycles()) for n in names}


def run_step(out: Path, state: dict):
    """The ``rtlsim`` build step (a :class:`hw_gen.build.StepResult`)."""
    from hw_gen.build import StepResult

    model, tensors = state["model"], state["sim_tensors"]
    groups = classify(model)
    op_types = {n.name: n.op_type for n in model.graph.node}
    if not groups["rtl"]:
        return StepResult("rtlsim", "skipped", "the graph has no RTL layers",
                          extra={"coverage": describe(groups, [], op_types)})
    if find_verilator() is None:
        return StepResult(
            "rtlsim", "skipped",
            f"verilator is not on PATH (Debian/Ubuntu: apt-get install verilator); "
            f"{len(groups['rtl'])} RTL layers not simulated",
            extra={"coverage": describe(groups, [], op_types)})
    try:
        checks, skipped = check_layers(model, tensors, out / "ip", out / "rtlsim",
                                       progress=state.get("progress", False))
    except HwGenError as exc:
        return StepResult("rtlsim", "fail", str(exc),
                          extra={"coverage": describe(groups, [], op_types)})
    estimates = _estimates(model, [c.layer for c in checks])
    layers = {}
    for c in checks:
        layers[c.layer] = c.as_dict()
        layers[c.layer]["estimate_cycles_finn"] = estimates[c.layer]
    simulated = [c.layer for c in checks]
    coverage = describe(groups, simulated, op_types)
    coverage["rtl_not_simulated_reasons"] = skipped
    integers = sum(c.integers for c in checks)
    compared = {"references": ["sim on the specialized graph",
                               "Verilator simulation of FINN's RTL (finn-rtllib) with our "
                               "testbench, randomized backpressure"],
                "integers": integers}
    extra = {"layers": layers, "coverage": coverage}
    failed = [c.summary() for c in checks if not c.passed]
    if failed:
        return StepResult("rtlsim", "fail", "; ".join(failed), compared, extra=extra)
    keys = {c.model["key"] for c in checks}
    built = len({c.model["key"] for c in checks if not c.model["cached"]})
    return StepResult(
        "rtlsim", "pass",
        f"{len(checks)} RTL layer(s) equal to sim under randomized backpressure ({integers} "
        f"integers); {len(keys)} distinct model(s), {built} compiled, {len(keys) - built} from "
        "the cache; "
        f"{len(groups['ours'])} of ours C-simulated, {len(groups['unchecked'])} FINN HLS "
        "layers unchecked after specialization (need finn-hlslib)",
        compared, extra=extra)
