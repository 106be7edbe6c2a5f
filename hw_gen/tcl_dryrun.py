"""Dry runs of generated vendor TCL in Python's own Tcl interpreter.

Every vendor command is replaced by a stub that records its arguments, so a generated script
is checked for Tcl syntax and for what it would ask Vitis HLS or Vivado to do (which files,
which top function, which part), without the tools.
"""

from __future__ import annotations

from pathlib import Path

VITIS_HLS_COMMANDS = (
    "open_project", "add_files", "set_top", "open_solution", "set_part", "create_clock",
    "csynth_design", "export_design", "config_compile", "config_interface", "config_rtl",
    "set_param", "close_project", "set_directive_interface",
)


def dry_run(script: Path, commands: tuple[str, ...] = VITIS_HLS_COMMANDS) -> list[list[str]]:
    """Run ``script`` from its folder with ``commands`` stubbed; return the recorded calls
    (command name and arguments, in order). Tcl errors raise ``tkinter.TclError``."""
    import tkinter

    tcl = tkinter.Tcl()
    calls: list[list[str]] = []

    def recorder(name: str):
        def record(*args: str) -> str:
            calls.append([name, *args])
            return ""
        return record

    for name in commands:
        tcl.createcommand(name, recorder(name))
    tcl.createcommand("exit", recorder("exit"))
    tcl.eval(f"cd {{{script.parent.resolve()}}}")
    tcl.eval(f"source {{{script.name}}}")
    return calls
