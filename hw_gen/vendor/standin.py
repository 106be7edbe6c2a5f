"""Recording stand-ins of ``vitis_hls``, ``vitis-run`` and ``vivado`` for tests of FINN's
vendor steps on a machine without the tools.

``install(folder)`` writes the three executables into ``folder`` and returns the environment
under which FINN finds them (``FINN_TOOL_DIR_OVERRIDE``, a versioned ``XILINX_VIVADO``,
``PATH``, ``HWGEN_STANDIN_LOG``). Each call dry-runs the TCL script it was given
(:mod:`hw_gen.vendor.dryrun`: only real tool commands pass), appends a JSON line (tool,
arguments, folder, script copy, calls, files written) to the log, and writes clearly marked
placeholders (``PLACEHOLDER_MARK``) where FINN looks for the tool's outputs afterwards:

- Vitis HLS ``export_design``: ``<project>/<solution>/impl/ip/component.xml`` and
  ``<project>/<solution>/impl/verilog/<top>.v`` (FINN's ``ipgen_singlenode_code``);
- Vivado ``make_wrapper``: the block design's ``hdl/<block>_wrapper.v`` that the script then
  adds (``CreateStitchedIP``); ``ipx::package_project -root_dir D``: ``D/component.xml``;
  ``write_verilog``/``report_*``/``write_checkpoint`` ``-file F``: ``F``;
- Vivado ``launch_runs ... -to_step write_bitstream`` in the Zynq project
  (``MakeZYNQProject``): ``<project>.runs/impl_1/top_wrapper.bit``, the hardware handoff
  ``<project>.gen/sources_1/bd/top/hw_handoff/top.hwh``, the routed timing summary beside the
  bitfile and ``synth_report.xml`` (a utilization table FINN parses) in the project folder.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from hw_gen.deploy.bitstream import PLACEHOLDER_MARK
from hw_gen.vendor.commands import VITIS_HLS, VIVADO
from hw_gen.vendor.dryrun import TclDryRunError, dry_run

TOOLS = ("vitis_hls", "vitis-run", "vivado")
# <= 2024.2: FINN calls vitis_hls; later versions vitis-run --mode hls
VIVADO_VERSION = "2024.1"
SYNTH_REPORT = """<?xml version="1.0"?>
<!-- {mark} -->
<RptDoc><section title="Utilization"><table><tablerow><tableheader contents="Instance"/>
<tableheader contents="Module"/><tableheader contents="Total LUTs"/></tablerow>
<tablerow><tablecell contents="top"/><tablecell contents="(top)"/><tablecell contents="0"/>
</tablerow></table></section></RptDoc>
"""


def install(folder: Path) -> dict[str, str]:
    """Write the stand-ins into ``folder``; return the environment to run FINN under."""
    folder = Path(folder).resolve()
    (folder / "bin").mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parents[2]
    for tool in TOOLS:
        exe = folder / "bin" / tool
        exe.write_text(f"#!/bin/sh\nPYTHONPATH={root}${{PYTHONPATH:+:$PYTHONPATH}} exec "
                       f"{sys.executable} -m hw_gen.vendor.standin {tool} \"$@\"\n")
        exe.chmod(0o755)
    vivado = folder / "Xilinx" / "Vivado" / VIVADO_VERSION
    vivado.mkdir(parents=True, exist_ok=True)
    return {"FINN_TOOL_DIR_OVERRIDE": str(folder / "bin"), "XILINX_VIVADO": str(vivado),
            "PATH": f"{folder / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "HWGEN_STANDIN_LOG": str(folder / "calls.jsonl")}


def _placeholder(path: Path, written: list[str], text: str | None = None) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = text if text is not None else f"{PLACEHOLDER_MARK.decode()}\n"
    path.write_text(body if PLACEHOLDER_MARK.decode() in body else body + PLACEHOLDER_MARK.decode())
    written.append(str(path.resolve()))


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else None


def _hls_effects(written: list[str]):
    state: dict[str, str] = {}

    def export_design(args):
        base = Path(state["project"]) / state["solution"] / "impl"
        _placeholder(base / "ip" / "component.xml", written)
        _placeholder(base / "verilog" / f"{state.get('top', 'top')}.v", written)

    return {
        "open_project": lambda a: state.__setitem__("project", a[0]),
        "open_solution": lambda a: state.__setitem__("solution", a[0]),
        "set_top": lambda a: state.__setitem__("top", a[0]),
        "export_design": export_design,
    }


def _vivado_effects(written: list[str]):
    state: dict[str, str] = {}

    def create_project(args):
        names = [a for a in args if not a.startswith("-")]
        state["name"], state["dir"] = names[0], names[1] if len(names) > 1 else "."

    def to_file(args):
        target = _option(args, "-file") or next((a for a in args[::-1] if "/" in a), None)
        if target:
            xml = SYNTH_REPORT.format(mark=PLACEHOLDER_MARK.decode())
            _placeholder(Path(target), written, xml if target.endswith(".xml") else None)

    def add_files(args):
        for a in args:
            if a.endswith("_wrapper.v") and state.get("wrapper") and not Path(a).exists():
                _placeholder(Path(a), written)

    def launch_runs(args):
        if _option(args, "-to_step") != "write_bitstream":
            return
        project = Path(state["dir"])
        name = state["name"]
        _placeholder(project / f"{name}.runs" / "impl_1" / "top_wrapper.bit", written)
        _placeholder(project / f"{name}.runs" / "impl_1"
                     / "top_wrapper_timing_summary_routed.rpt", written)
        _placeholder(project / f"{name}.gen" / "sources_1" / "bd" / "top" / "hw_handoff"
                     / "top.hwh", written, f"<!-- {PLACEHOLDER_MARK.decode()} -->\n")
        _placeholder(project / "synth_report.xml", written,
                     SYNTH_REPORT.format(mark=PLACEHOLDER_MARK.decode()))

    def package_project(args):
        root = _option(args, "-root_dir")
        if root:
            _placeholder(Path(root) / "component.xml", written)

    return {
        "create_project": create_project,
        "make_wrapper": lambda a: state.__setitem__("wrapper", "1"),
        "add_files": add_files,
        "write_verilog": to_file, "write_checkpoint": to_file,
        "report_utilization": to_file, "report_timing_summary": to_file, "report_power": to_file,
        "launch_runs": launch_runs,
        "ipx::package_project": package_project,
        "version": lambda a: f"{VIVADO_VERSION} (stand-in)",
        "get_property": _property_fixture,
    }


# Values a stubbed get_property returns where a script computes with them (fixtures).
PROPERTY_FIXTURES = {"CONFIG.ADDR_WIDTH": "12", "CONFIG.DATA_WIDTH": "32"}


def _property_fixture(args: list[str]) -> str:
    return PROPERTY_FIXTURES.get(args[0], "") if args else ""


def main(argv: list[str]) -> int:
    tool, args = argv[0], argv[1:]
    if tool == "vivado":
        script, commands = _option(args, "-source"), VIVADO
    elif tool == "vitis-run":
        script, commands = _option(args, "--tcl"), VITIS_HLS
    else:
        script, commands = (args[0] if args else None), VITIS_HLS
    log = Path(os.environ.get("HWGEN_STANDIN_LOG", "standin-calls.jsonl"))
    record = {"tool": tool, "args": args, "cwd": os.getcwd(), "script": script}
    written: list[str] = []
    status = 0
    if script is None:
        record["error"] = "no TCL script in the arguments"
        status = 1
    else:
        copy = log.parent / "scripts" / f"{len(_lines(log)):03d}_{Path(script).name}"
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(script, copy)
        record["script_copy"] = str(copy)
        effects = _vivado_effects(written) if tool == "vivado" else _hls_effects(written)
        try:
            calls = dry_run(Path(script), commands, effects)
            record["calls"] = calls
        except TclDryRunError as exc:
            record["error"] = str(exc)
            status = 1
    record["written"] = written
    with open(log, "a") as f:
        f.write(json.dumps(record) + "\n")
    if status:
        print(f"{tool} (stand-in): {record['error']}", file=sys.stderr)
    return status


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
