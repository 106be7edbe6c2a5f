"""Verilator: finding it, and compiling a model with its testbench, cached by content.

A model's key hashes everything that goes into it: Verilator's version, the flags, the lint
configuration, every source's name and text and the rendered testbench. Models live in
``$HWGEN_RTLSIM_CACHE`` (default ``~/.cache/hw-gen/rtlsim``) as ``<key>/tb``; a model is built
in a private folder and renamed into place, so concurrent builds never see half of one.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from hw_gen.errors import HwGenError

CACHE_ENV = "HWGEN_RTLSIM_CACHE"
COMPILE_TIMEOUT = 900.0
VENDOR_DIR = "vendor"  # FINN's files (finn-rtllib and its generated wrappers) go here
# Lint rules FINN's RTL trips under -Wall; off for FINN's files only, on for ours.
VENDOR_LINT_OFF = ("WIDTH", "DECLFILENAME", "LATCH", "UNUSEDPARAM", "UNUSEDSIGNAL", "UNDRIVEN",
                   "SELRANGE", "PINCONNECTEMPTY", "CASEINCOMPLETE", "VARHIDDEN",
                   "BLKSEQ", "SYNCASYNCNET", "IMPORTSTAR", "CMPCONST", "UNSIGNED")
# Our stitched top leaves the layers' unused outputs (AXI-lite responses) open on purpose.
OWN_LINT_OFF = {"chain.v": ("PINCONNECTEMPTY",)}
FLAGS = ("--cc", "--exe", "-Wall", "-CFLAGS", "-O1", "-CFLAGS", "-w")
# Verilator's runtime, the same for every model: compiled once per cache and reused.
RUNTIME_OBJECTS = ("verilated.o", "verilated_threads.o")


# Verilator 5.006 emits C++ that does not compile for whole-struct assignments to unpacked
# structs (fmpadding.sv's `B <= '{ vld: 0, dat: 'x }`). FINN's structs hold only bit vectors,
# so declaring them packed changes no behaviour; Verilator rejects any member that cannot be.
_UNPACKED_STRUCT = re.compile(r"\btypedef\s+struct\s*\{")


# It also miscounts an unpacked-array concatenation with a slice (fifo.sv's shift register
# `A <= { idat, A[0:DEPTH_IMPL-2] }`: "Assignment pattern missed initializing elements"); the
# same shift written element by element.
_SHIFT_REGISTER = ("A <= { idat, A[0:DEPTH_IMPL-2] };",
                   "begin A[0] <= idat; for(int unsigned i = 1; i < DEPTH_IMPL; i++) "
                   "A[i] <= A[i-1]; end")


# And it does not evaluate recursive constant functions (vpc.sv's gcd): Euclid as a loop.
_RECURSIVE_GCD = ("return (b == 0)? a : gcd(b, a % b);",
                  "while(b != 0) begin automatic int unsigned t = a % b; a = b; b = t; end "
                  "return a;")


def work_around_verilator(text: str) -> str:
    text = _UNPACKED_STRUCT.sub("typedef struct packed {", text)
    return text.replace(*_SHIFT_REGISTER).replace(*_RECURSIVE_GCD)


class VerilatorError(HwGenError):
    """Verilator refused or failed to build a model."""


@dataclass(frozen=True)
class Model:
    path: Path  # the testbench executable
    key: str
    seconds: float  # compile time; 0.0 when found in the cache
    cached: bool


def find_verilator() -> str | None:
    return shutil.which("verilator")


@lru_cache(maxsize=4)
def verilator_version(exe: str) -> str:
    done = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "hw-gen" / "rtlsim")


def lint_config() -> str:
    lines = ["`verilator_config"]
    lines += [f'lint_off -rule {rule} -file "*{VENDOR_DIR}/*"' for rule in VENDOR_LINT_OFF]
    lines += [f'lint_off -rule {rule} -file "{name}"' for name, rules in OWN_LINT_OFF.items()
              for rule in rules]
    return "\n".join(lines) + "\n"


def model_key(exe: str, vendor: dict[str, str], ours: dict[str, str], top: str) -> str:
    h = hashlib.sha256()
    for part in (verilator_version(exe), top, *FLAGS, lint_config(), _UNPACKED_STRUCT.pattern,
                 *_SHIFT_REGISTER, *_RECURSIVE_GCD):
        h.update(part.encode() + b"\0")
    for group in (vendor, ours):
        for name in group:  # order matters to Verilator (packages first)
            h.update(name.encode() + b"\0" + group[name].encode() + b"\0")
        h.update(b"\1")
    return h.hexdigest()


def _first_lines(text: str, n: int = 8) -> str:
    lines = [ln for ln in text.splitlines() if ln.startswith("%Error") or ln.startswith("%Warn")]
    return "\n".join((lines or text.splitlines())[:n])


def _run(command: list[str], work: Path, what: str, tool: str) -> None:
    try:
        done = subprocess.run(command, cwd=work, capture_output=True, text=True,
                              timeout=COMPILE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise VerilatorError(f"{what}: {tool} did not finish in {COMPILE_TIMEOUT:.0f} s "
                             f"(in {work})") from exc
    if done.returncode != 0:
        (work / f"{tool}.log").write_text(done.stdout + done.stderr)
        raise VerilatorError(f"{what}: {tool} failed (log in {work / f'{tool}.log'}): "
                             f"{_first_lines(done.stderr)}")


def _runtime_key(exe: str) -> str:
    text = verilator_version(exe) + "\0".join(FLAGS)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _keep_runtime(obj: Path, runtime: Path) -> None:
    if all((runtime / o).is_file() for o in RUNTIME_OBJECTS):
        return
    tmp = Path(tempfile.mkdtemp(prefix=".runtime-", dir=runtime.parent))
    for o in RUNTIME_OBJECTS:
        shutil.copy(obj / o, tmp / o)
    try:
        os.replace(tmp, runtime)
    except OSError:  # placed by a concurrent build
        shutil.rmtree(tmp, ignore_errors=True)


def compile_model(vendor: dict[str, str], ours: dict[str, str], top: str, what: str) -> Model:
    """Verilate the module ``top`` from ``vendor`` (FINN's files, in order) and ``ours`` (our
    Verilog and the C++ testbench ``tb.cpp``) into an executable; ``what`` names the layer in
    errors."""
    exe = find_verilator()
    if exe is None:
        raise VerilatorError("verilator is not on PATH")
    key = model_key(exe, vendor, ours, top)
    final = cache_dir() / key[:20]
    binary = final / "tb"
    if binary.is_file():
        return Model(binary, key, 0.0, True)
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{key[:20]}-", dir=final.parent))
    (work / VENDOR_DIR).mkdir()
    files = []
    for name, text in vendor.items():
        (work / VENDOR_DIR / name).write_text(work_around_verilator(text))
        files.append(f"{VENDOR_DIR}/{name}")
    for name, text in ours.items():
        (work / name).write_text(text)
        files.append(name)
    (work / "lint.vlt").write_text(lint_config())
    hdl = [f for f in files if not f.endswith(".cpp")]
    cpp = [f for f in files if f.endswith(".cpp")]
    command = [exe, *FLAGS, "--top-module", top, "--Mdir", "obj", "-o", "../tb", "lint.vlt",
               *hdl, *cpp]
    start = time.perf_counter()
    _run(command, work, what, "verilator")
    runtime = cache_dir() / f"runtime-{_runtime_key(exe)}"
    if all((runtime / o).is_file() for o in RUNTIME_OBJECTS):
        for o in RUNTIME_OBJECTS:  # newer than their sources: make keeps them
            shutil.copy(runtime / o, work / "obj" / o)
    _run(["make", "-s", "-C", "obj", "-f", f"V{top}.mk"], work, what, "make")
    if not (work / "tb").is_file():
        raise VerilatorError(f"{what}: make built no testbench in {work}")
    _keep_runtime(work / "obj", runtime)
    shutil.rmtree(work / "obj", ignore_errors=True)
    seconds = time.perf_counter() - start
    try:
        os.replace(work, final)
    except OSError:  # another process placed the same model first
        shutil.rmtree(work, ignore_errors=True)
    return Model(binary, key, seconds, False)
