"""The hardware model: estimates of every layer with their source, FIFO sizing on an
encoder-decoder skip (hand-derived depths, deadlock on a user depth below them), the folding
file's round trip, clocks, and the report."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from brevitas.export import export_qonnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_gen.boards import get_board, resolve_clock_ns
from hw_gen.build import build
from hw_gen.cli import main
from hw_gen.errors import HwGenError
from hw_gen.hwmodel.schedule import layer_schedule
from hw_gen.hwmodel.steps import FIFO_MODEL, DeadlockError, run_fifo
from lowering_nets import SkipNet, pixels, randomize_bn

H, W, C = 8, 10, 8


@pytest.fixture(scope="module")
def skip_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "skip.onnx"
    net = randomize_bn(SkipNet("concat", channels=C), seed=3)
    export_qonnx(net, pixels((1, 3, H, W)), str(path), dynamo=False)
    return path


@pytest.fixture(scope="module")
def built(skip_onnx, tmp_path_factory):
    out = tmp_path_factory.mktemp("hw")
    result = build(skip_onnx, out, stop_after="estimate")
    assert result.passed, result.summary()
    return out


def _estimate(out):
    return json.loads((out / "report" / "estimate.json").read_text())


def test_every_layer_has_positive_cycles_and_luts_with_a_source(built):
    est = _estimate(built)
    fifo_model = ModelWrapper(str(built / "finn_build" / FIFO_MODEL))
    hw = [n.name for n in fifo_model.graph.node if n.domain.startswith("finn.custom_op")]
    assert [r["node"] for r in est["layers"]] == hw
    ops = {r["op"].split("_")[0] for r in est["layers"]}
    assert {"MVAU", "ConvolutionInputGenerator", "FMPadding", "DuplicateStreams",
            "StreamingConcat", "UpsampleNearestNeighbour", "StreamingFIFO",
            "StreamingDataWidthConverter"} <= ops
    for row in est["layers"]:
        assert row["cycles"] > 0 and row["LUT"] > 0, row
        assert set(row["source"]) == {"cycles", "LUT", "BRAM_18K", "URAM", "DSP"}
        assert set(row["source"].values()) <= {"finn", "hw-gen"}
    by_op = {r["op"].split("_")[0]: r for r in est["layers"]}
    assert by_op["MVAU"]["source"]["LUT"] == "finn"
    for op in ("FMPadding", "DuplicateStreams", "StreamingConcat", "UpsampleNearestNeighbour"):
        assert by_op[op]["source"]["LUT"] == "hw-gen", op
    assert by_op["StreamingFIFO"]["memory"]["type"] in {"LUTRAM", "BRAM", "URAM"}
    assert est["shell"] and all(s["LUT"] > 0 for s in est["shell"])
    net = est["network"]
    assert net["totals"]["LUT"] == sum(r["LUT"] for r in est["layers"] + est["shell"])
    assert net["clock_mhz"] == 100 and net["fps"] == pytest.approx(1e8 / net["cycles_per_frame"])


def test_mvau_schedule_matches_finns_cycle_formula(built):
    model = ModelWrapper(str(built / "finn_build" / FIFO_MODEL))
    checked = 0
    for node in model.graph.node:
        inst = getCustomOp(node) if node.domain.startswith("finn.custom_op") else None
        if node.op_type.startswith("MVAU"):
            sched = layer_schedule(node, model)
            sf = inst.get_nodeattr("MW") // inst.get_nodeattr("SIMD")
            assert sched.T == inst.get_exp_cycles()
            assert list(sched.reads[0][:sf]) == list(range(sf))  # the first neuron fold reads
            assert sched.writes[0][0] == sf - 1
            checked += 1
        elif node.op_type.startswith("ConvolutionInputGenerator"):
            sched = layer_schedule(node, model)
            k = inst.get_nodeattr("ConvKernelDim")[0]
            w = inst.get_nodeattr("IFMDim")[1]
            words_per_px = len(sched.reads[0]) // (w * inst.get_nodeattr("IFMDim")[0])
            window = k * k * words_per_px  # output words of one window
            # RTL order: the window's first element leaves right after its pixel is read, one
            # word per cycle; its last waits for the line buffer, (K-1) rows and K pixels
            assert sched.writes[0][0] == sched.reads[0][0] + 2
            assert np.all(np.diff(sched.writes[0]) >= 1)
            last = sched.writes[0][window - 1]
            assert (sched.reads[0] < last).sum() >= ((k - 1) * w + k) * words_per_px
            assert sched.T >= max(len(sched.writes[0]), len(sched.reads[0]))
    assert checked >= 3


def _skip_fifos(model):
    """FIFOs (depth, width) on the concat's skip input, back to the duplicate."""
    concat = next(n for n in model.graph.node if n.op_type.startswith("StreamingConcat"))
    fifos, tensor = [], concat.input[1]
    while True:
        node = model.find_producer(tensor)
        if node.op_type.startswith("DuplicateStreams"):
            return fifos
        if node.op_type == "StreamingFIFO_rtl":
            inst = getCustomOp(node)
            fifos.append((node.name, inst.get_nodeattr("depth"), inst.get_instream_width()))
        tensor = node.input[0]


def test_skip_fifo_holds_what_the_long_branch_waits_for(built):
    """Hand-derived: the concat's first skip word waits for the upsampled e1 output of pixel
    (0,0), which needs the stride-2 conv's output (1,1), whose padded 3x3 window ends at e0's
    pixel (3,3): 3W+4 pixels of C one-bit channels pass the duplicate first. At most one pixel
    of them can sit in the long branch's first FIFO."""
    model = ModelWrapper(str(built / "finn_build" / FIFO_MODEL))
    fifos = _skip_fifos(model)
    assert fifos
    assert sum(d * w for _, d, w in fifos) >= (3 * W + 3) * C
    streams = json.loads((built / "report" / "fifo_model.json").read_text())["streams"]
    by_name = {s["fifo"]: s for s in streams}
    assert sum(by_name[f]["deadlock_free"] * w for f, _, w in fifos) >= (3 * W + 3) * C
    for s in streams:
        assert s["depth"] >= max(2, s["deadlock_free"])


def test_user_depth_below_the_deadlock_free_one_fails_naming_the_stream(built, tmp_path):
    model = ModelWrapper(str(built / "dataflow.onnx"))
    fifo_model = ModelWrapper(str(built / "finn_build" / FIFO_MODEL))
    name, _, _ = max(_skip_fifos(fifo_model), key=lambda f: f[1] * f[2])
    folding = json.loads((built / "report" / "folding.json").read_text())
    folding[name]["depth"] = 2
    path = tmp_path / "folding.json"
    path.write_text(json.dumps(folding))
    with pytest.raises(DeadlockError, match=rf"deadlock: FIFO {name} on the stream \S+ -> \S+"):
        run_fifo(model, tmp_path, get_board("Pynq-Z2"), path)


def test_folding_file_round_trip_reproduces_the_build(built, skip_onnx, tmp_path):
    folding = built / "report" / "folding.json"
    config = json.loads(folding.read_text())
    assert any(k.startswith("StreamingFIFO_rtl") and "depth" in v for k, v in config.items())
    assert any("PE" in v for v in config.values())
    again = build(skip_onnx, tmp_path, folding_config=folding, stop_after="estimate")
    assert again.passed, again.summary()
    assert json.loads((tmp_path / "report" / "folding.json").read_text()) == config
    assert _estimate(tmp_path)["layers"] == _estimate(built)["layers"]


def test_clock_the_shell_really_runs():
    z2, zcu = get_board("Pynq-Z2"), get_board("ZCU104")
    assert resolve_clock_ns(z2) == 10.0 and resolve_clock_ns(zcu) == 5.0
    assert resolve_clock_ns(z2, clock_ns=7.0) == pytest.approx(1000 / 142)  # 142.86 -> 142 MHz
    assert resolve_clock_ns(z2, clock_mhz=125.5) == pytest.approx(8.0)
    with pytest.raises(HwGenError, match="not both"):
        resolve_clock_ns(z2, clock_ns=5.0, clock_mhz=200)
    with pytest.raises(HwGenError, match="must be positive"):
        resolve_clock_ns(z2, clock_mhz=0)


def test_every_finn_board_has_resources_and_a_clock():
    from finn.util.basic import part_map

    for name in part_map:
        board = get_board(name)
        assert board.resources and board.resources["LUT"] > 0, name
        assert board.default_clock_mhz > 0 and board.memory_port_bits >= 64


def test_report_command_and_page_render(built, capsys, tmp_path):
    assert main(["report", str(built)]) == 0
    printed = capsys.readouterr().out
    assert "frames/s" in printed and "LUT" in printed and "report.html" in printed
    page = built / "report" / "report.html"
    text = page.read_text()
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", text)  # nothing fetched
    assert "<dc:date>" not in text  # the same page for the same build
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed")
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu"]
    dom = subprocess.run(args + ["--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    for chart in ("cycles", "luts", "memory", "utilisation", "fifos"):
        assert f'id="{chart}"><svg' in dom.replace("'", '"'), chart
    shot = tmp_path / "report.png"
    subprocess.run(args + [f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20_000


@pytest.mark.slow  # tests/test_vendor.py checks the same through the vendor steps in make test
def test_finns_fifo_step_builds_our_depths_into_the_fifo_hdl(built, tmp_path, monkeypatch):
    """FINN's own FIFO step (automatic sizing off, our FIFO-sizing file) on the dataflow
    partition, with its code generation of the FIFOs: each FIFO's .v carries our depth (the
    IP generation it calls last needs Vitis HLS and is left out here)."""
    import finn.builder.build_dataflow_steps as finn_steps
    from finn.builder.build_dataflow_config import DataflowBuildConfig

    from hw_gen.finn_adapter import builder_config_overrides
    from hw_gen.hwmodel.dataflow import dataflow_partition

    ours = json.loads((built / "report" / "fifo_depths.json").read_text())["fifo_depths"]
    partition = dataflow_partition(ModelWrapper(str(built / "dataflow.onnx")), tmp_path / "p")
    board = get_board("Pynq-Z2")
    cfg = DataflowBuildConfig(
        output_dir=str(tmp_path / "vendor"), synth_clk_period_ns=10.0, board=board.name,
        fpga_part=board.part, generate_outputs=[], auto_fifo_depths=False,
        fifo_config_file=built / "report" / "fifo_depths.json", **builder_config_overrides())
    monkeypatch.setattr(finn_steps, "step_hw_ipgen", lambda model, cfg, parent_node=None: model)
    model = finn_steps.step_set_fifo_depths(partition, cfg)
    fifos = [n for n in model.graph.node if n.op_type == "StreamingFIFO_rtl"]
    assert sorted(n.name for n in fifos) == sorted(ours)
    for node in fifos:
        inst = getCustomOp(node)
        folder = Path(inst.get_nodeattr("code_gen_dir_ipgen"))
        verilog = (folder / f"{inst.get_verilog_top_module_name()}.v").read_text()
        depth = re.search(r"\.DEPTH\((\d+)\)", verilog)
        assert depth, node.name
        assert int(depth.group(1)) == ours[node.name], node.name
