"""The rtlsim build step: FINN's RTL layers in Verilator, equal to sim under randomized
backpressure; broken configurations caught and named; cycles against FINN's estimate;
coverage; the model cache; no Verilator, a clear skip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper

import sim
from brevitas_models.export import export_qonnx
from hw_gen.build import build
from hw_gen.lowering.execute import graph_input
from hw_gen.rtlsim.step import check_layers, run_step
from lowering_nets import pixels
from rtlsim_nets import two_bit_net

pytestmark = pytest.mark.skipif(shutil.which("verilator") is None, reason="needs verilator")

RTL_OPS = ("FMPadding_rtl", "ConvolutionInputGenerator_rtl", "Thresholding_rtl")
# Thresholding with 4 lanes, padding with 2 (the rest as FINN folds them)
FOLDING = {"Defaults": {}, "Thresholding_rtl_0": {"PE": 4}, "Thresholding_rtl_1": {"PE": 4},
           "FMPadding_rtl_1": {"SIMD": 2}}


@pytest.fixture(scope="module")
def two_bit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("two_bit")
    path = export_qonnx(two_bit_net(), pixels((1, 3, 8, 8)), folder / "net.onnx")
    np.save(folder / "x.npy", pixels((1, 3, 8, 8), seed=4).numpy())
    (folder / "fold.json").write_text(json.dumps(FOLDING))
    result = build(path, folder / "build", input_npy=folder / "x.npy", stop_after="rtlsim",
                   folding_config=folder / "fold.json")
    return folder, result


def _state(folder: Path) -> dict:
    """The build's specialized graph and sim's tensors on its input, as the step gets them."""
    out = folder / "build"
    model = ModelWrapper(str(out / "dataflow.onnx"))
    bundle = sim.load_bundle(out / "dataflow.sim.json")
    x = graph_input(model, np.load(folder / "x.npy"))
    return {"model": model, "sim_tensors": sim.run(bundle, {bundle.inputs[0].name: x},
                                                   return_all=True)}


def _rtl_nodes(model: ModelWrapper) -> list:
    return [n for n in model.graph.node if n.op_type in RTL_OPS]


def test_every_rtl_layer_equals_sim(two_bit):
    folder, result = two_bit
    step = result.step("rtlsim")
    assert step.status == "pass", step.details
    model = ModelWrapper(str(folder / "build" / "dataflow.onnx"))
    nodes = _rtl_nodes(model)
    assert {n.op_type for n in nodes} == set(RTL_OPS)
    assert sorted(step.extra["layers"]) == sorted(n.name for n in nodes)
    # two copies of each layer's output tensor, every integer compared
    expected = sum(2 * int(np.prod(model.get_tensor_shape(n.output[0]))) for n in nodes)
    assert sum(layer["integers"] for layer in step.extra["layers"].values()) == expected
    for name, layer in step.extra["layers"].items():
        assert layer["passed"] and layer["integers"] > 0, name
    record = json.loads((folder / "build" / "verification.json").read_text())
    saved = next(s for s in record["steps"] if s["step"] == "rtlsim")
    assert saved["compared"]["integers"] >= expected  # with chains and FIFOs


def test_consecutive_rtl_layers_stitched(two_bit):
    """Padding into sliding window, stitched in one model, equals sim at the chain's end; the
    pair folded to different widths is not stitched (no width converter in this graph)."""
    folder, result = two_bit
    chains = result.step("rtlsim").extra["chains"]
    model = ModelWrapper(str(folder / "build" / "dataflow.onnx"))
    for i in (0, 2):
        name = f"FMPadding_rtl_{i}+ConvolutionInputGenerator_rtl_{i}"
        swg = model.get_node_from_name(f"ConvolutionInputGenerator_rtl_{i}")
        assert chains[name]["passed"], chains[name]
        assert chains[name]["integers"] == 2 * int(np.prod(model.get_tensor_shape(swg.output[0])))
    assert "2 lanes of UINT2 (8 bits) into 8 lanes of UINT2 (16 bits)" in \
        chains["FMPadding_rtl_1+ConvolutionInputGenerator_rtl_1"]["not_stitched"]


def test_lane_order_is_exercised(two_bit):
    """Multi-lane layers saw input beats whose lanes differ, so a swap would show."""
    _, result = two_bit
    layers = result.step("rtlsim").extra["layers"]
    assert layers["Thresholding_rtl_0"]["lanes"] == 4
    assert layers["FMPadding_rtl_1"]["lanes"] == 2
    for name in ("Thresholding_rtl_0", "Thresholding_rtl_1", "FMPadding_rtl_1"):
        assert layers[name]["lane_asymmetric_beats"] > 0, name


def test_swapped_lane_order_is_caught_and_named(two_bit, tmp_path):
    folder, _ = two_bit
    state = _state(folder)
    checks, _ = check_layers(state["model"], state["sim_tensors"], folder / "build" / "ip",
                             tmp_path, lsb_first=False)
    failed = {c.layer for c in checks if not c.passed}
    multi_lane = {c.layer for c in checks if c.lanes > 1 and c.lane_asymmetric_beats > 0}
    assert multi_lane and failed == multi_lane
    for c in checks:
        if not c.passed:
            assert "values differ" in c.summary() and c.summary().startswith(c.layer)


def test_thresholds_of_another_layer_are_caught(two_bit, tmp_path):
    folder, _ = two_bit
    copy = tmp_path / "copy"
    shutil.copytree(folder / "build", copy / "build")
    shutil.copy(folder / "x.npy", copy / "x.npy")
    ip = copy / "build" / "ip"
    for own in sorted((ip / "Thresholding_rtl_1").glob("*.dat")):
        other = ip / "Thresholding_rtl_0" / own.name.replace("_rtl_1_", "_rtl_0_")
        own.write_text(other.read_text())
    step = run_step(copy / "build", _state(copy))
    assert step.status == "fail"
    assert step.details.startswith("Thresholding_rtl_1: ")
    assert "values differ" in step.details and "Thresholding_rtl_0:" not in step.details
    assert step.extra["layers"]["Thresholding_rtl_0"]["passed"]


def _cycles(result, op_type: str) -> list[tuple[str, dict, dict]]:
    layers = result.step("rtlsim").extra["layers"]
    return [(name, rec["cycles"], rec["estimate_cycles"]) for name, rec in layers.items()
            if rec["op_type"] == op_type]


@pytest.mark.parametrize("op_type", [
    "FMPadding_rtl",
    "Thresholding_rtl",
    "ConvolutionInputGenerator_rtl",
])
def test_hardware_model_schedule_matches_rtl(two_bit, op_type):
    """Per RTL layer kind, the hardware model's schedule against the measured cycles: the
    steady-state interval within 5 %, the first output within max(16 cycles, 5 %)."""
    _, result = two_bit
    layers = _cycles(result, op_type)
    assert layers
    for name, measured, estimate in layers:
        model = estimate["hwmodel"]
        assert abs(measured["interval"] - model["interval"]) <= 0.05 * measured["interval"], \
            (name, measured, model)
        first = measured["first_output"]
        assert abs(first - model["first_output"]) <= max(16, 0.05 * first), (name, measured, model)


def test_finn_estimate_is_the_steady_state_interval(two_bit):
    """FINN's get_exp_cycles against the measured interval: within 5 % for every RTL layer."""
    _, result = two_bit
    for name, layer in result.step("rtlsim").extra["layers"].items():
        measured = layer["cycles"]["interval"]
        estimate = layer["estimate_cycles"]["finn_exp_cycles"]
        assert abs(measured - estimate) <= 0.05 * estimate, (name, measured, estimate)
        assert 0 <= layer["cycles"]["first_output"] <= layer["cycles"]["last_output"]


def test_coverage_lists_every_hardware_layer(two_bit):
    folder, result = two_bit
    coverage = result.step("rtlsim").extra["coverage"]
    model = ModelWrapper(str(folder / "build" / "dataflow.onnx"))
    hw = [n.name for n in model.graph.node if n.domain.startswith("finn.custom_op.fpgadataflow")]
    listed = coverage["rtl_verilator"] + coverage["ours_csim"] + \
        coverage["unchecked_after_specialization"] + coverage["rtl_not_simulated"]
    assert sorted(listed) == sorted(hw)
    assert coverage["unchecked_by_op"]["MVAU_hls"] == 4
    assert "finn-hlslib" in coverage["unchecked_reason"]


def test_warm_cache_compiles_nothing(two_bit):
    folder, _ = two_bit
    step = run_step(folder / "build", _state(folder))
    assert step.status == "pass"
    assert all(layer["model"]["cached"] for layer in step.extra["layers"].values())


def test_without_verilator_the_step_is_skipped(two_bit, monkeypatch):
    folder, _ = two_bit
    monkeypatch.setenv("PATH", "/nonexistent")
    step = run_step(folder / "build", _state(folder))
    assert step.status == "skipped"
    assert "verilator is not on PATH" in step.details and "8 RTL layers" in step.details


def test_fifo_graph_fifos_converters_and_stitched_depths(two_bit):
    """The fifo step's graph: every FIFO and width converter Verilator compiles equals sim; the
    chains stitched there carry the depths the fifo step chose (FINN's sizing file)."""
    folder, result = two_bit
    fifo = result.step("rtlsim").extra["fifo_graph"]
    depths = json.loads((folder / "build" / "report" / "fifo_depths.json").read_text())
    chosen = depths["fifo_depths"]
    assert fifo["layers"] and all(layer["passed"] for layer in fifo["layers"].values())
    kinds = {layer["op_type"] for layer in fifo["layers"].values()}
    assert kinds == {"StreamingFIFO_rtl", "StreamingDataWidthConverter_rtl"}
    for name, reason in fifo["not_simulated"].items():
        assert name.startswith("StreamingFIFO_rtl_") and "verilator" in reason
    stitched = [c for c in fifo["chains"].values() if "passed" in c]
    assert any(len(c["stages"]) >= 5 for c in stitched)
    for chain in stitched:
        assert chain["passed"] and chain["integers"] > 0
        for stage in chain["stages"]:
            if stage["op_type"] == "StreamingFIFO_rtl":
                assert stage["depth"] == chosen[stage["layer"]]


@pytest.mark.slow
def test_demo_network_every_rtl_layer_equals_sim(tmp_path):
    """The demo network (small width and image): 21 RTL layers and their FIFO'd graph."""
    from brevitas_models.nets import build as build_network
    from test_mbu_network import randomized

    net = randomized(build_network("demo", width=4), 3)
    path = export_qonnx(net, pixels((1, 3, 16, 16)), tmp_path / "demo.onnx")
    np.save(tmp_path / "x.npy", pixels((1, 3, 16, 16), seed=4).numpy())
    result = build(path, tmp_path / "build", input_npy=tmp_path / "x.npy", stop_after="rtlsim")
    step = result.step("rtlsim")
    assert step.status == "pass", step.details
    layers = step.extra["layers"]
    assert len(layers) == 21 and all(layer["passed"] for layer in layers.values())
    assert {layer["op_type"] for layer in layers.values()} == set(RTL_OPS)
