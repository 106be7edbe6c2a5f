"""Dry runs of generated vendor TCL in Python's own Tcl interpreter.

Every vendor command of the tool's list (:mod:`hw_gen.vendor.commands`) is replaced by a stub
that records its arguments (and, for the stand-ins, may write the files the tool would
write); Tcl's ``unknown`` fails on any other command, so a script is checked for Tcl syntax,
for calling only real commands, and for what it asks the tool to do (which files, which top
function, which part), without the tools. ``exec`` never runs a program.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from hw_gen.errors import HwGenError
from hw_gen.vendor.commands import VITIS_HLS

Effect = Callable[[list[str]], str | None]


class TclDryRunError(HwGenError):
    """A generated script failed its dry run: the message names the script and command."""


def dry_run(script: Path, commands: tuple[str, ...] = VITIS_HLS,
            effects: dict[str, Effect] | None = None,
            env: dict[str, str] | None = None) -> list[list[str]]:
    """Run ``script`` from its folder with ``commands`` stubbed; return the recorded calls
    (command name and arguments, in order). ``effects[name](args)`` runs after a call is
    recorded and may return the command's result."""
    import tkinter

    script = Path(script).resolve()
    tcl = tkinter.Tcl()
    calls: list[list[str]] = []
    effects = effects or {}
    failures: list[str] = []

    def recorder(name: str):
        def record(*args: str) -> str:
            calls.append([name, *args])
            effect = effects.get(name)
            result = effect(list(args)) if effect else None
            return "" if result is None else result
        return record

    def unknown(*words: str) -> str:
        failures.append(" ".join(words[:3]))
        raise RuntimeError(f"unknown command {words[0]!r}")

    def no_exec(*words: str) -> str:
        failures.append("exec " + " ".join(words[:3]))
        raise RuntimeError("exec in a dry run")

    for ns in sorted({c.split("::")[0] for c in commands if "::" in c}):
        tcl.eval(f"namespace eval {ns} {{}}")
    for name in commands:
        tcl.createcommand(name, recorder(name))
    tcl.createcommand("exit", recorder("exit"))
    tcl.createcommand("unknown", unknown)
    tcl.createcommand("exec", no_exec)
    for key, value in {**os.environ, **(env or {})}.items():
        tcl.globalsetvar("env", key, value)
    tcl.eval(f"cd {{{script.parent}}}")
    try:
        tcl.eval(f"source {{{script.name}}}")
    except tkinter.TclError as exc:
        what = f"calls {failures[0]!r}, not a command of the tool" if failures else str(exc)
        raise TclDryRunError(f"{script}: {what}") from None
    return calls
