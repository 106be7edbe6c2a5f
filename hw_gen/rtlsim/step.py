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
from hw_gen.rtlsim.chain import StitchError, describe_chain, find_chains
from hw_gen.rtlsim.check import LayerCheck, check_layer
from hw_gen.rtlsim.coverage import classify, describe
from hw_gen.rtlsim.layer import TOP, RtlLayer, describe_layer
from hw_gen.rtlsim.testbench import render_testbench
from hw_gen.rtlsim.verilator import (
    Model,
    VerilatorError,
    compile_model,
    find_verilator,
    model_key,
)

if TYPE_CHECKING:
    from qonnx.core.modelwrapper import ModelWrapper

JOBS = 2


def _streams(model: ModelWrapper, node) -> tuple[list[str], list[str]]:
    inputs = [t for t in node.input if t and model.get_initializer(t) is None]
    return inputs, list(node.output)


def _tb_sources(layer: RtlLayer) -> dict[str, str]:
    return {**layer.own, "tb.cpp": render_testbench(layer.top, layer.inp, layer.out)}


def compile_layers(layers: list[RtlLayer], jobs: int = JOBS, progress: bool = False,
                   failed: dict[str, str] | None = None) -> dict[str, Model]:
    """One Verilator model per distinct layer configuration, built in parallel; layer name ->
    model. With ``failed``, a layer Verilator cannot compile is recorded there (layer ->
    Verilator's message) instead of raising."""
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
        errors = {}
        for key, future in futures.items():
            try:
                models[key] = future.result()
            except VerilatorError as exc:
                if failed is None:
                    raise
                errors[key] = str(exc)
            bar.update(1)
    for name, key in key_of.items():
        if key in errors:
            failed[name] = errors[key]
    return {name: models[key] for name, key in key_of.items() if key in models}


Case = tuple[RtlLayer, np.ndarray, np.ndarray]  # a layer or chain, its input, sim's output


def run_cases(cases: list[Case], run_dir: Path, jobs: int = JOBS, lsb_first: bool = True,
              progress: bool = False, what: str = "rtl simulation",
              failed: dict[str, str] | None = None) -> list[LayerCheck]:
    """Compile (cached) and check each case against sim's output, in parallel (``failed``:
    see :func:`compile_layers`)."""
    from tqdm import tqdm

    models = compile_layers([c[0] for c in cases], jobs, progress, failed)
    cases = [c for c in cases if c[0].name in models]

    def one(case: Case) -> LayerCheck:
        layer, x, y = case
        m = models[layer.name]
        check = check_layer(layer, m.path, run_dir / layer.name, x, y, lsb_first)
        check.model = {"key": m.key[:20], "compile_seconds": round(m.seconds, 2),
                       "cached": m.cached}
        return check

    with ThreadPoolExecutor(max_workers=jobs) as pool, \
            tqdm(total=len(cases), desc=what, unit="case", leave=False,
                 disable=not progress) as bar:
        checks = []
        for check in pool.map(one, cases):
            checks.append(check)
            bar.update(1)
    return checks


def check_layers(model: ModelWrapper, tensors: dict, ip_dir: Path, run_dir: Path,
                 names: list[str] | None = None, jobs: int = JOBS, lsb_first: bool = True,
                 progress: bool = False,
                 tolerate: bool = False) -> tuple[list[LayerCheck], dict[str, str]]:
    """Check the RTL layers ``names`` (default: all) of ``model``; returns the checks and the
    layers not simulated, with the reason (with ``tolerate``, Verilator's refusals too)."""
    from finn.util.fpgadataflow import is_rtl_node

    cases, skipped = [], {}
    for node in model.graph.node:
        if not is_rtl_node(node) or (names is not None and node.name not in names):
            continue
        ins, outs = _streams(model, node)
        if len(ins) != 1 or len(outs) != 1:
            skipped[node.name] = f"{len(ins)} input and {len(outs)} output streams (the " \
                                 "testbench drives one of each)"
            continue
        cases.append((describe_layer(node, ip_dir, TOP), np.asarray(tensors[ins[0]]),
                      np.asarray(tensors[outs[0]])))
    failed: dict[str, str] | None = {} if tolerate else None
    checks = run_cases(cases, run_dir, jobs, lsb_first, progress, failed=failed)
    for name, message in (failed or {}).items():
        skipped[name] = message
    return checks, skipped


def check_chains(model: ModelWrapper, tensors: dict, ip_dir: Path, run_dir: Path,
                 layers: list[str], jobs: int = JOBS,
                 progress: bool = False) -> tuple[list[LayerCheck], dict[str, dict]]:
    """Every run of consecutive ``layers`` stitched into one model, checked against sim at
    its ends; returns the checks and each chain's stages (with FIFO depths)."""
    cases, stages = [], {}
    for names in find_chains(model, layers):
        try:
            chain, _ = describe_chain(model, names, ip_dir)
        except StitchError as exc:  # e.g. no width converter between two widths yet
            stages["+".join(names)] = {"not_stitched": str(exc)}
            continue
        first, last = model.get_node_from_name(names[0]), model.get_node_from_name(names[-1])
        cases.append((chain, np.asarray(tensors[first.input[0]]),
                      np.asarray(tensors[last.output[0]])))
        stages[chain.name] = _stage_records(model, names)
    failed: dict[str, str] = {}
    checks = run_cases(cases, run_dir, jobs, progress=progress, what="stitched chains",
                       failed=failed)
    for name, message in failed.items():
        stages[name] = {"not_stitched": message}
    return checks, stages


def _stage_records(model: ModelWrapper, names: list[str]) -> list[dict]:
    from qonnx.custom_op.registry import getCustomOp

    records = []
    for name in names:
        node = model.get_node_from_name(name)
        record = {"layer": name, "op_type": node.op_type}
        if node.op_type.startswith("StreamingFIFO"):
            record["depth"] = int(getCustomOp(node).get_nodeattr("depth"))
        records.append(record)
    return records


def _estimates(model: ModelWrapper, names: list[str]) -> dict[str, dict]:
    """Per layer: FINN's ``get_exp_cycles`` and our hardware model's schedule (first output
    relative to the first input read, steady-state interval, last output), in cycles."""
    from qonnx.custom_op.registry import getCustomOp

    from hw_gen.hwmodel.schedule import layer_schedule

    estimates = {}
    for name in names:
        node = model.get_node_from_name(name)
        s = layer_schedule(node, model)
        start = int(s.reads[0][0])
        estimates[name] = {
            "finn_exp_cycles": int(getCustomOp(node).get_exp_cycles()),
            "hwmodel": {"first_output": int(s.writes[0][0]) - start,
                        "last_output": int(s.writes[0][-1]) - start, "interval": int(s.T)},
        }
    return estimates


def _chain_records(chains: list[LayerCheck], stages: dict) -> dict:
    records = {c.layer: {**c.as_dict(), "stages": stages[c.layer]} for c in chains}
    for name, record in stages.items():
        if isinstance(record, dict):  # not stitched, and why
            records[name] = record
    return records


def _fifo_graph(out: Path, state: dict, model: ModelWrapper, tensors: dict, part: str,
                clk_ns: float, passed: list[str], progress: bool) -> dict:
    """FIFOs and width converters of the ``fifo`` step's graph, one by one, and the chains of
    RTL layers there, stitched with the chosen FIFO depths."""
    import copy

    from qonnx.core.modelwrapper import ModelWrapper as Wrapper

    from hw_gen.rtlsim.fifo_graph import generate, map_tensors, pass_through_layers

    fifo_model = Wrapper(copy.deepcopy(state["fifo"]["model"].model))
    ip = out / "rtlsim" / "ip_fifo"
    generate(fifo_model, part, clk_ns, ip)
    values = map_tensors(fifo_model, model, tensors)
    names = pass_through_layers(fifo_model)
    checks, skipped = check_layers(fifo_model, values, ip, out / "rtlsim" / "fifo", names,
                                   progress=progress, tolerate=True)
    ok = [c.layer for c in checks if c.passed] + [n for n in passed
                                                  if fifo_model.get_node_from_name(n)]
    chains, stages = check_chains(fifo_model, values, ip, out / "rtlsim" / "fifo_chains", ok,
                                  progress=progress)
    return {"checks": checks, "chains": chains, "stages": stages, "skipped": skipped}


def run_step(out: Path, state: dict, part: str | None = None, clk_ns: float = 10.0):
    """The ``rtlsim`` build step (a :class:`hw_gen.build.StepResult`); with ``part`` and the
    ``fifo`` step's graph in ``state``, that graph's FIFOs and width converters too."""
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
    progress = state.get("progress", False)
    fifo = None
    try:
        checks, skipped = check_layers(model, tensors, out / "ip", out / "rtlsim",
                                       progress=progress)
        passed = [c.layer for c in checks if c.passed]
        chains, stages = check_chains(model, tensors, out / "ip", out / "rtlsim" / "chains",
                                      passed, progress=progress)
        if part is not None and state.get("fifo"):
            fifo = _fifo_graph(out, state, model, tensors, part, clk_ns, passed, progress)
    except HwGenError as exc:
        return StepResult("rtlsim", "fail", str(exc),
                          extra={"coverage": describe(groups, [], op_types)})
    estimates = _estimates(model, [c.layer for c in checks])
    layers = {c.layer: {**c.as_dict(), "estimate_cycles": estimates[c.layer]} for c in checks}
    coverage = describe(groups, [c.layer for c in checks], op_types)
    coverage["rtl_not_simulated_reasons"] = skipped
    every = checks + chains + (fifo["checks"] + fifo["chains"] if fifo else [])
    integers = sum(c.integers for c in every)
    compared = {"references": ["sim on the specialized graph",
                               "Verilator simulation of FINN's RTL (finn-rtllib) with our "
                               "testbench, randomized backpressure"],
                "integers": integers}
    extra = {"layers": layers, "chains": _chain_records(chains, stages), "coverage": coverage}
    text = (f"{len(checks)} RTL layer(s) equal to sim under randomized backpressure, "
            f"{len(chains)} stitched chain(s)")
    if fifo:
        extra["fifo_graph"] = {"layers": {c.layer: c.as_dict() for c in fifo["checks"]},
                               "chains": _chain_records(fifo["chains"], fifo["stages"]),
                               "not_simulated": fifo["skipped"]}
        coverage["rtl_fifo_graph"] = [c.layer for c in fifo["checks"]]
        text += (f"; with FIFOs: {len(fifo['checks'])} FIFOs and width converters, "
                 f"{len(fifo['chains'])} chain(s) stitched with the chosen depths, "
                 f"{len(fifo['skipped'])} not simulated (Verilator cannot compile them)")
    failed = [c.summary() for c in every if not c.passed]
    if failed:
        return StepResult("rtlsim", "fail", "; ".join(failed), compared, extra=extra)
    keys = {c.model["key"] for c in every}
    built = len({c.model["key"] for c in every if not c.model["cached"]})
    return StepResult(
        "rtlsim", "pass",
        f"{text} ({integers} integers); {len(keys)} distinct model(s), {built} compiled, "
        f"{len(keys) - built} from the cache; {len(groups['ours'])} of ours C-simulated, "
        f"{len(groups['unchecked'])} FINN HLS layers unchecked after specialization (need "
        "finn-hlslib)",
        compared, extra=extra)
