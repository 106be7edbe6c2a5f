"""FINN's vendor steps (Vitis HLS, Vivado) behind our build steps ``hls_synth``, ``stitch`` and
``bitfile``, on the dataflow partition whose sources ``codegen`` wrote.

Without the tools the step is skipped with what is ready and the exact (shell-quoted)
command that finishes the build on a machine with them. With the tools (or the recording
stand-ins of :mod:`hw_gen.vendor.standin`) FINN's own builder steps run; FIFO depths come from
the build's ``fifo`` step (``OUT/report/fifo_depths.json``, FINN's ``fifo_sizing.json``
format), applied by FINN's FIFO step without its own sizing. The bitfile step copies the ``.bit``/``.hwh`` into
``bitstreams/`` with a manifest, and refuses a stand-in's placeholder.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from hw_gen.errors import HwGenError
from hw_gen.finn_adapter import vendor_tools

# FINN's builder steps behind each of our vendor steps.
VENDOR_STEPS = {
    "hls_synth": ["step_hw_ipgen"],
    "stitch": ["step_set_fifo_depths", "step_create_stitched_ip"],
    "bitfile": ["step_synthesize_bitfile", "step_make_driver", "step_deployment_package"],
}


def resume_command(model_path, board: str, out: Path, clk_ns: float) -> str:
    """The command that continues this build, shell-quoted."""
    return shlex.join(["hw-gen", "build", str(model_path), "--board", board, "--clock-ns",
                       f"{clk_ns:g}", "-o", str(out), "--resume"])


def _ready(out: Path) -> str:
    layers = sorted(p.name for p in (out / "ip").iterdir()) if (out / "ip").is_dir() else []
    return (f"ready: {len(layers)} layers' HLS sources and TCL in {out / 'ip'}, the dataflow "
            f"partition {out / 'finn_build' / 'dataflow_partition.onnx'}")


def builder_config(out: Path, fpga, clk_ns: float):
    from finn.builder.build_dataflow_config import (
        AutoFIFOSizingMethod,
        DataflowBuildConfig,
        DataflowOutputType,
        ShellFlowType,
    )

    from hw_gen.finn_adapter import builder_config_overrides

    from hw_gen.hwmodel.steps import FIFO_CONFIG, REPORT_DIR

    # our fifo step's depths (FINN's fifo_sizing.json format), applied by FINN's FIFO step
    # without its own sizing; minimal FIFOs only where a build has none
    depths = out / REPORT_DIR / FIFO_CONFIG
    fifo = ({"auto_fifo_depths": False, "fifo_config_file": depths} if depths.exists()
            else {"auto_fifo_strategy": AutoFIFOSizingMethod.FORCE_MINIMAL_FIFOS})
    return DataflowBuildConfig(
        output_dir=str(out / "vendor"), synth_clk_period_ns=clk_ns, board=fpga.name,
        fpga_part=fpga.part, shell_flow_type=ShellFlowType.VIVADO_ZYNQ, verify_steps=[],
        generate_outputs=[DataflowOutputType.STITCHED_IP, DataflowOutputType.BITFILE,
                          DataflowOutputType.PYNQ_DRIVER, DataflowOutputType.DEPLOYMENT_PACKAGE],
        **fifo, **builder_config_overrides(),
    )


def run_vendor_step(step: str, out: Path, model_path, fpga, clk_ns: float, state: dict):
    """One of our vendor steps; returns the build's ``StepResult``."""
    from hw_gen.build import StepResult

    if not fpga.is_zynq:
        return StepResult(step, "skipped",
                          f"{fpga.name} is not a Zynq board of FINN's PYNQ part map: estimates "
                          "only, no bitstream (FINN's Zynq shell builds bitstreams for those)")
    tools = vendor_tools()
    if not tools.complete:
        return StepResult(
            step, "skipped",
            f"needs {' and '.join(tools.missing())} on PATH; {_ready(out)}; on a machine with "
            f"them, `{resume_command(model_path, fpga.name, out, clk_ns)}` runs FINN's "
            f"{', '.join(VENDOR_STEPS[step])} here",
        )
    import finn.builder.build_dataflow_steps as finn_steps
    from qonnx.core.modelwrapper import ModelWrapper

    from hw_gen.deploy import collect_bitstream

    cfg = builder_config(out, fpga, clk_ns)
    path = out / "finn_build" / "dataflow_partition.onnx"
    model = state.get("vendor_model") or ModelWrapper(str(path))
    for name in VENDOR_STEPS[step]:
        model = getattr(finn_steps, name)(model, cfg)
    state["vendor_model"] = model
    model.save(str(path))
    if step == "bitfile":
        try:
            folder = collect_bitstream(out, model_path, fpga.name, clk_ns)
        except HwGenError as exc:
            return StepResult(step, "fail", f"not copied to bitstreams/: {exc}")
        return StepResult(step, "pass", f"bitfile, hwh and manifest in {folder}")
    return StepResult(step, "pass", f"FINN's {', '.join(VENDOR_STEPS[step])} completed")
