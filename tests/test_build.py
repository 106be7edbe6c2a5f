"""hw-gen build: our layer's C simulation, FINN's code generation, verification records,
interfaces FINN's stitching expects, reproducibility and name sanitizing."""

import json
import re

import numpy as np
import pytest
from brevitas.export import export_qonnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_gen.build import build
from hw_gen.cli import main
from hw_gen.layers.base import HwgenHLSBackend
from hw_gen.lowering.pipeline import STEP_NAMES, step_path
from lowering_nets import BilinearNet, pixels, randomize_bn


@pytest.fixture(scope="module")
def bilinear_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "bilinear.onnx"
    net = randomize_bn(BilinearNet(), seed=2)
    export_qonnx(net, pixels((1, 3, 8, 10)), str(path), dynamo=False)
    return path


@pytest.fixture(scope="module")
def built(bilinear_onnx, tmp_path_factory):
    out = tmp_path_factory.mktemp("build_a")
    return build(bilinear_onnx, out)


def test_build_records_every_step(built):
    record = json.loads((built.out_dir / "verification.json").read_text())
    status = {s["step"]: s["status"] for s in record["steps"]}
    assert record["passed"]
    for step in ("lower", "names", "sim", "csim_ours", "codegen"):
        assert status[step] == "pass", (step, status)
    for step in ("hls_synth", "stitch", "bitfile"):
        assert status[step] == "skipped"
    csim = next(s for s in record["steps"] if s["step"] == "csim_ours")
    assert csim["compared"]["integers"] > 0
    assert len(csim["compared"]["references"]) == 2
    skipped = next(s for s in record["steps"] if s["step"] == "bitfile")
    assert "hw-gen build" in skipped["details"]


def _top_signature(cpp: str, top: str) -> list[tuple[str, int]]:
    match = re.search(rf"void {top}\((.*?)\)\s*{{", cpp, re.S)
    assert match, f"no top function {top}"
    return [(name, int(width)) for width, name in
            re.findall(r"hls::stream<ap_uint<(\d+)> >\s*&(\w+)", match.group(1))]


def test_generated_top_matches_finn_stitching_interface(built):
    model = ModelWrapper(str(built.out_dir / "finn_build" / "dataflow_partition.onnx"))
    ours = [n for n in model.graph.node if isinstance(getCustomOp(n), HwgenHLSBackend)]
    assert ours
    for node in ours:
        inst = getCustomOp(node)
        cpp = (built.out_dir / "ip" / node.name / f"top_{node.name}.cpp").read_text()
        intf = inst.get_verilog_top_module_intf_names()
        assert _top_signature(cpp, node.name) == list(intf["s_axis"]) + list(intf["m_axis"])
        for port, _ in list(intf["s_axis"]) + list(intf["m_axis"]):
            assert f"#pragma HLS INTERFACE axis port={port}" in cpp
        assert "ap_ctrl_none port=return" in cpp
        tcl = (built.out_dir / "ip" / node.name / f"hls_syn_{node.name}.tcl").read_text()
        assert "-std=c++14" in tcl and f"set_top {node.name}" in tcl
        assert "finn-hlslib" not in tcl


def _cpp_sources(out):
    return {p.relative_to(out): p.read_text() for p in sorted((out / "ip").rglob("*"))
            if p.suffix in (".cpp", ".hpp", ".h")}


def test_two_builds_generate_identical_cpp(bilinear_onnx, built, tmp_path):
    again = build(bilinear_onnx, tmp_path / "elsewhere")
    a, b = _cpp_sources(built.out_dir), _cpp_sources(again.out_dir)
    assert a.keys() == b.keys() and a
    for name in a:
        left = a[name].replace(str(built.out_dir), "<OUT>")
        right = b[name].replace(str(again.out_dir), "<OUT>")
        assert left == right, name
        assert not re.search(r"(?<![\w.])/(tmp|work|home|root|usr|opt)/", left), name


def test_hostile_node_names_are_sanitized(bilinear_onnx, tmp_path):
    out = tmp_path / "names"
    build(bilinear_onnx, out, stop_after="lower")
    last = step_path(out, STEP_NAMES[-1])
    model = ModelWrapper(str(last))
    hostile = ['a "quoted" name', "a[1]", "a b", "a_b", "a;b", "a-b", "1st", "int"]
    for node, name in zip(model.graph.node, hostile * len(model.graph.node)):
        node.name = name
    model.save(str(last))
    result = build(bilinear_onnx, out, resume=True)
    assert result.step("names").status == "pass"
    renamed = result.step("names").extra["renamed"]
    assert set(renamed) >= {'a "quoted" name', "a[1]", "a;b", "1st", "int"}
    assert len(set(renamed.values())) == len(renamed)
    assert result.step("csim_ours").status == "pass", result.summary()
    assert result.step("codegen").status == "pass", result.summary()


def test_cli_build_and_help(bilinear_onnx, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "build" in capsys.readouterr().out
    assert main(["build", str(bilinear_onnx), "-o", str(tmp_path / "cli"),
                 "--stop-after", "csim_ours"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"csim_ours\s+pass", out)
    assert main(["build", str(tmp_path / "none.onnx"), "-o", str(tmp_path / "x")]) == 2
    assert "model file not found" in capsys.readouterr().err


def test_build_with_an_input_file(bilinear_onnx, tmp_path):
    x = pixels((2, 3, 8, 10), seed=4).numpy()
    np.save(tmp_path / "x.npy", x)
    result = build(bilinear_onnx, tmp_path / "with_input", input_npy=tmp_path / "x.npy",
                   stop_after="csim_ours")
    assert result.passed, result.summary()
    assert "the given input" in result.step("sim").details


def test_our_synthesis_tcl_dry_runs(built):
    from hw_gen.vendor.dryrun import dry_run

    for folder in (built.out_dir / "ip").iterdir():
        if not (folder / f"{folder.name}.hpp").exists():
            continue
        calls = dry_run(folder / f"hls_syn_{folder.name}.tcl")
        names = [c[0] for c in calls]
        assert names[0] == "open_project" and names[-1] == "exit"
        assert ["set_top", folder.name] in calls
        added = [c[1] for c in calls if c[0] == "add_files"]
        assert added == [f"top_{folder.name}.cpp"]
        assert all((folder / f).exists() for f in added)
        assert (folder / "include" / "hls_stream.h").exists()
        assert "csynth_design" in names and "export_design" in names
