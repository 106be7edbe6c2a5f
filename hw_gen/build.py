"""``hw-gen build``: from a QONNX model to generated accelerator sources, checked on the way.

Steps, each recorded in ``OUT/verification.json`` as ``pass``, ``fail`` or ``skipped``:

1. ``lower``: the lowering flow (:mod:`hw_gen.lowering`), with its static type check;
2. ``names``: node names made C++-safe and unique (they become HLS top functions);
3. ``fifo``: FINN's width converters and FIFOs inserted as FINN's FIFO step inserts them, every
   FIFO sized by our cycle model of the folded graph (:mod:`hw_gen.hwmodel`), the depths in
   FINN's FIFO-sizing file ``OUT/report/fifo_depths.json``;
4. ``estimate``: cycles and resources of every layer, the shell and the network against the
   board (``OUT/report/estimate.json``), the folding (``OUT/report/folding.json``) and the
   HTML report;
5. ``threeway``: the model itself as the reference: the exported QONNX file run by qonnx's
   executor on the build's input (or torch's quantizers with ``torch_model``), compared
   integer for integer with every tensor each saved lowering step keeps a counterpart of, in
   FINN's Python execution and in sim (:mod:`hw_gen.threeway.build_step`);
6. ``sim``: the final graph run by sim; its outputs against the model's (labels equal,
   logits within the rounding of the final scale);
7. ``csim_ours``: our layers' generated HLS, compiled with g++ and run on the integers that
   reach them, compared with their sim kernels integer for integer;
8. ``codegen``: FINN's code generation of every layer into ``OUT/ip/<node>/``;
9. ``rtlsim``: FINN's RTL layers in Verilator against sim (:mod:`hw_gen.rtlsim`);
10. ``finn_cppsim``: FINN's C simulation of its own layers (needs finn-hlslib);
11. ``hls_synth``, ``stitch``, ``bitfile``: Vitis HLS and Vivado (need the tools).

A ``pass`` names the two implementations compared and how many integers were compared.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from hw_gen.boards import DEFAULT_BOARD, get_board, resolve_clock_ns
from hw_gen.errors import HwGenError
from hw_gen.finn_adapter import finn_hlslib_dir, finn_log, init_finn
from hw_gen.rtlsim.step import run_step as run_rtlsim
from hw_gen.vendor.flow import VENDOR_STEPS, run_vendor_step

BUILD_STEPS = ["lower", "names", "fifo", "estimate", "threeway", "sim", "csim_ours", "codegen",
               "rtlsim", "finn_cppsim", "hls_synth", "stitch", "bitfile"]


@dataclass
class StepResult:
    step: str
    status: str  # "pass", "fail" or "skipped"
    details: str = ""
    compared: dict | None = None  # {"references": [a, b], "integers": n}
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


@dataclass
class BuildResult:
    out_dir: Path
    steps: list[StepResult]

    @property
    def passed(self) -> bool:
        return all(s.status != "fail" for s in self.steps)

    def step(self, name: str) -> StepResult | None:
        return next((s for s in self.steps if s.step == name), None)

    def summary(self) -> str:
        width = max(len(s.step) for s in self.steps)
        lines = []
        for s in self.steps:
            lines.append(f"{s.step.ljust(width)}  {s.status:7s}  {s.details}")
        return "\n".join(lines)


def build_input(model_path: str | Path, input_npy: str | Path | None) -> tuple[np.ndarray, str]:
    """The input the checks run on, validated as ``hw-gen sim`` validates it, or by default
    one seeded frame of what the model takes; and where it came from."""
    from hw_gen.simrun import check_input, default_input, load_input, model_input_graph

    graph = model_input_graph(model_path)
    if input_npy is None:
        return default_input(graph), "a seeded input the model takes"
    x = load_input(input_npy)
    check_input(graph, x, str(input_npy))
    return x, "the given input"


def build(
    model_path: str | Path,
    out_dir: str | Path,
    board: str = DEFAULT_BOARD,
    clk_ns: float | None = None,
    target_fps: float | None = None,
    folding_config: str | Path | None = None,
    outputs: str = "both",
    input_npy: str | Path | None = None,
    stop_after: str | None = None,
    resume: bool = False,
    progress: Callable[[str], None] | None = None,
    torch_model=None,
    clock_mhz: float | None = None,
    fit: float = 0.8,
    strict_fps: bool = False,
) -> BuildResult:
    """Build ``model_path`` into ``out_dir`` (see the module doc); never raises for a failing
    check, only for bad input: the result and ``OUT/verification.json`` say what failed.
    The clock is ``clk_ns`` or ``clock_mhz`` (the board's default when neither is given), as
    the shell really runs it. A ``target_fps`` is folded to the board: the best rate up to it
    whose layers use at most ``fit`` of every resource (a warning when below the target, an
    error with ``strict_fps``)."""
    out = Path(out_dir).resolve()
    init_finn(out / "finn_build")
    fpga = get_board(board)
    clk_ns = resolve_clock_ns(fpga, clk_ns, clock_mhz)
    if stop_after is not None and stop_after not in BUILD_STEPS:
        raise HwGenError(f"unknown step '{stop_after}'; steps are: {', '.join(BUILD_STEPS)}")
    x, source = build_input(model_path, input_npy)
    steps: list[StepResult] = []
    state: dict = {"x": x, "source": source}
    runners = {
        "lower": lambda: _lower(model_path, out, fpga.name, clk_ns, target_fps, folding_config,
                                outputs, resume, state,
                                {"board": fpga.name, "fit": fit, "strict_fps": strict_fps}),
        "threeway": lambda: _threeway(out, model_path, torch_model, state),
        "names": lambda: _names(out, state),
        "fifo": lambda: _fifo(out, fpga, folding_config, state),
        "estimate": lambda: _estimate(out, fpga, clk_ns, fit, state),
        "sim": lambda: _sim(out, state),
        "csim_ours": lambda: _csim_ours(out, state),
        "codegen": lambda: _codegen(out, fpga.part, clk_ns, state),
        "rtlsim": lambda: run_rtlsim(out, state, fpga.part, clk_ns),
        "finn_cppsim": _finn_cppsim,
        **{step: (lambda step=step: run_vendor_step(step, out, model_path, fpga, clk_ns, state))
           for step in VENDOR_STEPS},
    }
    for name in BUILD_STEPS:
        if progress:
            progress(name)
        t0 = time.perf_counter()
        with finn_log(out / "finn.log"):
            result = runners[name]()
        result.seconds = round(time.perf_counter() - t0, 3)
        steps.append(result)
        if result.status == "fail" or name == stop_after:
            break
    build_result = BuildResult(out, steps)
    _write_verification(build_result, model_path, fpga.name, clk_ns)
    if (out / "report" / "estimate.json").exists() and build_result.step("estimate"):
        from hw_gen.reporting import write_report

        write_report(out)
    return build_result


def _lower(model_path, out, board, clk_ns, target_fps, folding_config, outputs, resume, state,
           fold_board):
    from hw_gen.lowering import lower

    result = lower(model_path, out, board=board, outputs=outputs, clk_ns=clk_ns,
                   target_fps=target_fps, folding_config=folding_config, resume=resume,
                   fold_board=fold_board)
    state["lowered"] = result
    facts = result.run.context.facts
    warning = f"; {facts['fold_warning']}" if facts.get("fold_warning") else ""
    return StepResult(
        "lower", "pass",
        f"{len(result.rows)} hardware layers; data types of {facts.get('layers_type_checked', 0)} "
        f"layers checked against their value ranges{warning}",
        extra={"throughput": result.throughput(), "facts": facts},
    )


def _names(out, state):
    from hw_gen.layers.naming import sanitize_node_names
    from hw_gen.lowering import DATAFLOW_NAME

    model = state["lowered"].model
    renamed = sanitize_node_names(model)
    model.save(str(out / DATAFLOW_NAME))
    state["model"] = model
    detail = f"{len(renamed)} node name(s) changed" if renamed else "all names C++-safe"
    return StepResult("names", "pass", detail, extra={"renamed": renamed})


def _threeway(out, model_path, torch_model, state):
    from hw_gen.threeway.build_step import run_threeway

    result, state["reference"] = run_threeway(out, Path(model_path), state["x"], torch_model)
    return result


def _fifo(out, fpga, folding_config, state):
    from hw_gen.hwmodel.steps import DeadlockError, run_fifo

    try:
        state["fifo"] = fifo = run_fifo(state["model"], out, fpga, folding_config)
    except DeadlockError as exc:
        return StepResult("fifo", "fail", str(exc))
    return StepResult("fifo", "pass",
                      f"{len(fifo['depths'])} FIFOs sized by the cycle model in "
                      f"{fifo['seconds']:.1f} s ({fifo['bits'] / 8192:.1f} KiB); "
                      "depths in report/fifo_depths.json")


def _estimate(out, fpga, clk_ns, fit, state):
    from hw_gen.hwmodel.steps import estimate_summary, run_estimate
    from hw_gen.reporting import write_report

    est = run_estimate(state["fifo"], out, fpga, clk_ns, fit)
    write_report(out)
    return StepResult("estimate", "pass", estimate_summary(est),
                      extra={"network": est["network"]})


def _sim(out, state):
    import sim
    from hw_gen.bundle import write_bundle
    from hw_gen.lowering.execute import graph_input
    from hw_gen.threeway.build_step import output_failures

    model = state["model"]
    json_path, _ = write_bundle(model, out / "dataflow.sim")
    bundle = sim.load_bundle(json_path)
    state["sim_input"] = graph_input(model, state["x"])
    tensors = sim.run(bundle, {bundle.inputs[0].name: state["sim_input"]}, return_all=True)
    state["sim_tensors"] = tensors
    outputs = {o.name: np.asarray(tensors[o.name]) for o in model.graph.output}
    failures, compared_values = output_failures(state["reference"], outputs)
    reference = state["reference"]
    compared = {"references": ["sim on the final (specialized, folded) graph",
                               "the torch model" if reference.kind == "torch"
                               else "the exported QONNX model run by qonnx's executor"],
                "values": compared_values}
    if failures:
        return StepResult("sim", "fail", "; ".join(failures), compared)
    return StepResult("sim", "pass",
                      f"sim == the model on {state['source']}: {compared_values} output values "
                      "(labels equal, logits within the final scale's rounding)",
                      compared, extra={"bundle": json_path.name})


def _csim_ours(out, state):
    from qonnx.custom_op.registry import getCustomOp

    from hw_gen.cppsim import CompileError
    from hw_gen.layers.base import HwgenHLSBackend
    from hw_gen.layers.csim import LayerCase, csim_layers

    model, tensors = state["model"], state["sim_tensors"]
    cases = []
    for node in model.graph.node:
        if not node.domain.startswith("finn.custom_op.fpgadataflow"):
            continue
        inst = getCustomOp(node)
        if isinstance(inst, HwgenHLSBackend):
            inputs = [np.asarray(tensors[t]).astype(np.int64) for t in node.input
                      if model.get_initializer(t) is None]  # weights are not streamed
            expected = [np.asarray(tensors[t]).astype(np.int64) for t in node.output]
            cases.append(LayerCase(inst, inputs, expected, model))
    if not cases:
        return StepResult("csim_ours", "skipped", "the graph has none of our layers")
    try:
        results = csim_layers(cases, out / "csim")
    except CompileError as exc:
        return StepResult("csim_ours", "fail", f"g++ failed: {exc}")
    failed = [f"{top}: {r.summary()}" for top, r in results.items() if not r.passed]
    integers = sum(r.n_compared for r in results.values())
    compared = {"references": ["sim kernel (numpy)", "g++ C simulation of the generated HLS"],
                "integers": integers}
    per_layer = {top: r.summary() for top, r in results.items()}
    if failed:
        return StepResult("csim_ours", "fail", "; ".join(failed), compared, extra=per_layer)
    return StepResult(
        "csim_ours", "pass",
        f"{len(results)} layer(s) of ours matched bit for bit ({integers} integers)",
        compared, extra=per_layer,
    )


def _codegen(out, part, clk_ns, state):
    from finn.transformation.fpgadataflow.create_dataflow_partition import (
        CreateDataflowPartition,
    )
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from hw_gen.codegen import generate_ip_sources

    model = state["model"]
    partitions = out / "finn_build" / "partitions"
    parent = model.transform(CreateDataflowPartition(partition_model_dir=str(partitions)))
    sdps = [n for n in parent.graph.node if n.op_type == "StreamingDataflowPartition"]
    if len(sdps) != 1:
        return StepResult("codegen", "fail", f"{len(sdps)} dataflow partitions (expected one)")
    dataflow = ModelWrapper(getCustomOp(sdps[0]).get_nodeattr("model"))
    generated = generate_ip_sources(dataflow, part, clk_ns, out / "ip")
    dataflow.save(str(out / "finn_build" / "dataflow_partition.onnx"))
    files = sum(len(v) for v in generated.values())
    return StepResult("codegen", "pass",
                      f"FINN's code generation wrote {files} files for {len(generated)} layers "
                      "into ip/", extra={"layers": generated})


def _finn_cppsim() -> StepResult:
    if finn_hlslib_dir() is None:
        return StepResult(
            "finn_cppsim", "skipped",
            "finn-hlslib is not installed (not on PyPI); FINN's own layers are C-simulated where "
            "FINN's dependencies are (`finn deps update`); sim carries the check here",
        )
    return StepResult("finn_cppsim", "skipped",
                      "finn-hlslib found, but FINN's C simulation of its own layers is not part "
                      "of hw-gen build yet")


def _write_verification(result: BuildResult, model_path, board: str, clk_ns: float) -> None:
    data = {
        "model": str(model_path),
        "board": board,
        "clock_ns": clk_ns,
        "passed": result.passed,
        "python": platform.python_version(),
        "steps": [asdict(s) for s in result.steps],
    }
    (result.out_dir / "verification.json").write_text(json.dumps(data, indent=1, sort_keys=True))
