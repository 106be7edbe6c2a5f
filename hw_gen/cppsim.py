"""C simulation of our HLS layers with g++ only: compile, run, compare integer for integer.

Headers: our ``templates/`` (``hls_stream.h``, ``tb_io.h``, ``cppsim_prelude.h``) on ``-I``, the
Xilinx ap_types that ship inside the installed ``hls4ml`` package on ``-isystem`` (located
without importing hls4ml; never copied into this repository). ``-I`` folders are searched
before ``-isystem`` ones, so our ``hls_stream.h`` wins over hls4ml's copy beside ``ap_int.h``.
Every translation unit starts with ``cppsim_prelude.h`` (``-include``), which includes the
vendor headers with their uninitialized-read warnings switched off for the vendor text only,
so our code builds under ``-Wall -Werror``. ``-Wno-unknown-pragmas`` lets ``#pragma HLS`` through.

Data exchange with a testbench (see ``templates/tb_io.h``): each stream port ``name`` is a
file ``<name>.bin`` in the run folder, raw little-endian int64, one value per element in
stream order (C order of the NHWC tensor, channels innermost). The testbench packs PE
consecutive elements into one ``ap_uint<PE*W>`` word (element k at bits [k*W, (k+1)*W),
two's complement when signed) and unpacks outputs back to int64 with sign extension.

Use (a layer test)::

    sources = {"layer.cpp": rendered_layer, "tb.cpp": rendered_testbench}
    x_port, y_port = Port("in", bits=4, signed=True, pe=8), Port("out", bits=9, signed=True, pe=4)
    result = simulate(sources, tmp_path, {x_port: x_nhwc}, {y_port: sim_kernel(x_nhwc)})
    assert result.passed, result.summary()

where ``tb.cpp`` builds ``hls::stream<ap_uint<32> > in("in", words)`` (a capacity that holds the
whole input), fills it with ``tb_io::file_to_stream<4, 8, true>("in.bin", in)``, calls the
top function and drains the output with ``tb_io::stream_to_file<9, 4, true>(out, words,
"out.bin")``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
PRELUDE = "cppsim_prelude.h"
# -Wno-aggressive-loop-optimizations: once inlined, GCC 12 reports "iteration N invokes undefined
# behavior" in ap_private's reversed range() read (h < l), a branch our code never takes; the
# vendor-only diagnostic pragmas of the prelude do not reach it (upsample layers with wide words).
CXXFLAGS = ("-std=c++14", "-O2", "-Wall", "-Werror", "-Wno-unknown-pragmas",
            "-Wno-aggressive-loop-optimizations", "-pthread")
BINARY_NAME = "csim"
DEFAULT_RUN_TIMEOUT = 300.0
COMPILE_TIMEOUT = 900.0
_ERROR_LINES = 12


class CppSimError(RuntimeError):
    """A C simulation could not be built or run (one-line message)."""


class CompileError(CppSimError):
    """g++ rejected the sources; ``stderr`` holds the full compiler output."""

    def __init__(self, message: str, stderr: str) -> None:
        super().__init__(message)
        self.stderr = stderr


def ap_types_dir() -> Path:
    """The Xilinx ap_types folder inside the installed hls4ml package (hls4ml is not imported)."""
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise CppSimError(
            "hls4ml is not installed: C simulation needs the ap_int.h/ap_fixed.h it ships "
            "(pip install --no-deps hls4ml)"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "templates" / "vivado" / "ap_types"
        if (candidate / "ap_int.h").is_file() and (candidate / "ap_fixed.h").is_file():
            return candidate
    raise CppSimError(
        f"hls4ml at {list(spec.submodule_search_locations)} has no templates/vivado/ap_types/"
        "ap_int.h: reinstall hls4ml"
    )


def compiler() -> str:
    """Path of g++ on PATH."""
    path = shutil.which("g++")
    if path is None:
        raise CppSimError("g++ not found on PATH: install it (Debian/Ubuntu: apt-get install g++)")
    return path


@lru_cache(maxsize=None)
def _compiler_version(path: str) -> str:
    return subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout


@lru_cache(maxsize=None)
def _header_exit_codes() -> dict[str, int]:
    text = (TEMPLATES_DIR / "hls_stream.h").read_text()
    return {m[1]: int(m[2]) for m in re.finditer(r"#define HLS_SIM_EXIT_(\w+) (\d+)", text)}


def deadlock_exit_code() -> int:
    """Exit code of a simulation that ``hls_stream.h`` ended on a deadlock."""
    return _header_exit_codes()["DEADLOCK"]


def error_exit_code() -> int:
    """Exit code of a simulation that ``hls_stream.h``/``tb_io.h`` ended on an error."""
    return _header_exit_codes()["ERROR"]


# ---------------------------------------------------------------------------------------------
# Compilation


@dataclass(frozen=True)
class Binary:
    """A compiled C-simulation executable."""

    path: Path
    key: str  # content hash of everything that went into it
    compile_seconds: float  # 0.0 when reused from the cache
    cached: bool


def _cache_key(sources: Mapping[str, str], flags: Sequence[str], gxx: str, vendor: Path) -> str:
    h = hashlib.sha256()

    def feed(*parts: str) -> None:
        for part in parts:
            data = part.encode()
            h.update(len(data).to_bytes(8, "little") + data)

    feed(_compiler_version(gxx), *flags)
    for name in sorted(sources):
        feed(name, sources[name])
    for header in sorted(TEMPLATES_DIR.glob("*.h")):
        feed(header.name, header.read_text())
    try:
        feed("hls4ml", importlib.metadata.version("hls4ml"), str(vendor))
    except importlib.metadata.PackageNotFoundError:
        feed(str(vendor))
    return h.hexdigest()


def _check_source_names(sources: Mapping[str, str]) -> None:
    if not any(name.endswith(".cpp") for name in sources):
        raise CppSimError(f"no .cpp among the sources {sorted(sources)}")
    for name in sources:
        p = Path(name)
        if p.is_absolute() or ".." in p.parts or not name.strip():
            raise CppSimError(f"source name {name!r}: use a relative path inside the work folder")


def _first_errors(stderr: str) -> str:
    lines = stderr.splitlines()
    first = next(
        (i for i, line in enumerate(lines) if "error" in line or "undefined reference" in line), 0
    )
    return "\n".join(lines[first : first + _ERROR_LINES])


def _run_compiler(command: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT
        )
    except subprocess.TimeoutExpired as exc:
        raise CppSimError(f"g++ did not finish {what} in {COMPILE_TIMEOUT:.0f} s") from exc


def compile_sources(
    sources: Mapping[str, str],
    work_dir: str | Path,
    *,
    extra_flags: Sequence[str] = (),
) -> Binary:
    """Compile ``sources`` (file name -> text; every ``.cpp`` is a translation unit).

    The sources are written to ``work_dir/<key>/`` and built there (includes between them are
    relative), one g++ per translation unit in parallel, then linked. The executable is reused
    when the same sources, flags, headers and compiler were built before. Raises
    :class:`CompileError` with the compiler's first errors on failure.
    """
    _check_source_names(sources)
    gxx = compiler()
    vendor = ap_types_dir()
    flags = [*CXXFLAGS, *extra_flags]
    key = _cache_key(sources, flags, gxx, vendor)
    build_dir = Path(work_dir) / key[:16]
    binary = build_dir / BINARY_NAME
    if binary.is_file():
        return Binary(binary, key, 0.0, True)
    build_dir.mkdir(parents=True, exist_ok=True)
    for name, text in sources.items():
        (build_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (build_dir / name).write_text(text)
    units = sorted(name for name in sources if name.endswith(".cpp"))
    includes = ["-I", str(TEMPLATES_DIR), "-isystem", str(vendor), "-include", PRELUDE]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=min(len(units), os.cpu_count() or 1)) as pool:
        compiled = list(pool.map(
            lambda unit: _run_compiler(
                [gxx, *flags, *includes, "-c", unit, "-o", f"{unit}.o"], build_dir, unit
            ),
            units,
        ))
    for unit, done in zip(units, compiled):
        if done.returncode != 0:
            raise CompileError(
                f"g++ failed on {unit} (in {build_dir}):\n{_first_errors(done.stderr)}",
                done.stderr,
            )
    fd, tmp_name = tempfile.mkstemp(prefix=f".{BINARY_NAME}-", dir=build_dir)
    os.close(fd)
    objects = [f"{unit}.o" for unit in units]
    linked = _run_compiler([gxx, *flags, *objects, "-o", Path(tmp_name).name], build_dir, "link")
    if linked.returncode != 0:
        Path(tmp_name).unlink(missing_ok=True)
        raise CompileError(
            f"g++ could not link {', '.join(objects)} (in {build_dir}):\n"
            f"{_first_errors(linked.stderr)}",
            linked.stderr,
        )
    os.replace(tmp_name, binary)  # atomic: a concurrent build of the same key cannot see half
    return Binary(binary, key, time.perf_counter() - start, False)


# ---------------------------------------------------------------------------------------------
# Stream files


@dataclass(frozen=True)
class Port:
    """A testbench stream port: file ``<name>.bin`` of elements of ``bits`` bits, PE per word."""

    name: str
    bits: int
    signed: bool
    pe: int = 1

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise ValueError(f"port name {self.name!r}: use letters, digits, '_', '.', '-'")
        top = 64 if self.signed else 63
        if not 1 <= self.bits <= top:
            raise ValueError(f"port {self.name}: bits={self.bits} outside 1..{top}")
        if self.pe < 1:
            raise ValueError(f"port {self.name}: pe={self.pe} must be >= 1")

    @property
    def file_name(self) -> str:
        return f"{self.name}.bin"

    @property
    def value_range(self) -> tuple[int, int]:
        if self.signed:
            return -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1
        return 0, (1 << self.bits) - 1

    def check(self, values: np.ndarray) -> np.ndarray:
        """``values`` as int64 after checking dtype, PE folding and range (ValueError otherwise)."""
        arr = np.asarray(values)
        if arr.dtype.kind not in "iub":
            raise ValueError(f"port {self.name}: integer array expected, got dtype {arr.dtype}")
        if arr.ndim == 0 or arr.shape[-1] % self.pe:
            raise ValueError(
                f"port {self.name}: innermost dimension of shape {arr.shape} is not a multiple "
                f"of pe={self.pe}"
            )
        lo, hi = self.value_range
        if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
            kind = "int" if self.signed else "uint"
            raise ValueError(
                f"port {self.name}: values in [{int(arr.min())}, {int(arr.max())}] do not fit "
                f"{kind}{self.bits} [{lo}, {hi}]"
            )
        return arr.astype(np.int64)


def write_stream_file(path: str | Path, port: Port, values: np.ndarray) -> None:
    """Write ``values`` (checked against ``port``) as a raw little-endian int64 file."""
    port.check(values).astype("<i8").tofile(path)


def read_stream_file(path: str | Path) -> np.ndarray:
    """Read a raw little-endian int64 file as a flat int64 array."""
    return np.fromfile(path, dtype="<i8").astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Comparison


_NHWC_AXES = ("frame", "row", "col", "channel")


@dataclass(frozen=True)
class Mismatch:
    """The first differing element of a port, and how many differ."""

    port: str
    flat_index: int
    index: tuple[int, ...]
    expected: int
    got: int
    count: int
    total: int

    def describe(self) -> str:
        axes = _NHWC_AXES if len(self.index) == 4 else [f"d{i}" for i in range(len(self.index))]
        where = ", ".join(f"{a}={i}" for a, i in zip(axes, self.index))
        return (
            f"{self.port}: {self.count} of {self.total} values differ; first at flat index "
            f"{self.flat_index} ({where}): expected {self.expected}, got {self.got}"
        )


def compare(port: str, expected: np.ndarray, got: np.ndarray) -> Mismatch | None:
    """None when ``got`` (flat, stream order) equals ``expected`` (np.array_equal on the flat
    arrays); otherwise the first mismatch, its index decoded with ``expected``'s shape (NHWC:
    frame, row, col, channel). ``got`` must have ``expected.size`` elements."""
    exp = np.asarray(expected).reshape(-1)
    out = np.asarray(got).reshape(-1)
    if out.size != exp.size:
        raise ValueError(f"{port}: {out.size} values to compare with {exp.size} expected")
    if np.array_equal(exp, out):
        return None
    bad = np.flatnonzero(exp != out)
    first = int(bad[0])
    index = tuple(int(i) for i in np.unravel_index(first, np.shape(expected)))
    return Mismatch(port, first, index, int(exp[first]), int(out[first]), int(bad.size), exp.size)


# ---------------------------------------------------------------------------------------------
# Running


@dataclass(frozen=True)
class BlockedProcess:
    """One line of a deadlock report: ``process`` waits to ``op`` ("read"/"write") ``stream``."""

    process: str
    op: str
    stream: str
    size: int
    depth: int

    def describe(self) -> str:
        state = "empty" if self.op == "read" else "full"
        return f"{self.process} waits to {self.op} {self.stream} ({state}, depth {self.depth})"


@dataclass(frozen=True)
class DeadlockReport:
    """Every live process was blocked on a stream (see templates/hls_stream.h)."""

    blocked: tuple[BlockedProcess, ...]

    @property
    def streams(self) -> set[str]:
        return {b.stream for b in self.blocked}

    def describe(self) -> str:
        return "deadlock: " + "; ".join(b.describe() for b in self.blocked)


_DEADLOCK_LINE = re.compile(
    r'^HLS_SIM DEADLOCK process="(?P<process>[^"]*)" op=(?P<op>read|write) '
    r'stream="(?P<stream>[^"]*)" state=(?:empty|full) size=(?P<size>\d+) depth=(?P<depth>\d+)$',
    re.MULTILINE,
)
_MARKED_LINE = re.compile(r"^HLS_SIM (?:ERROR|WARNING) .*$", re.MULTILINE)


def parse_deadlock(stderr: str) -> DeadlockReport | None:
    """The deadlock report in a simulation's stderr, or None."""
    blocked = tuple(
        BlockedProcess(m["process"], m["op"], m["stream"], int(m["size"]), int(m["depth"]))
        for m in _DEADLOCK_LINE.finditer(stderr)
    )
    return DeadlockReport(blocked) if blocked else None


@dataclass
class CppSimResult:
    """Outcome of one C-simulation run."""

    passed: bool
    n_compared: int = 0
    mismatch: Mismatch | None = None
    deadlock: DeadlockReport | None = None
    timed_out: bool = False
    error: str | None = None  # why it failed, when not a mismatch or a deadlock
    messages: list[str] = field(default_factory=list)  # HLS_SIM ERROR/WARNING lines
    returncode: int | None = None
    compile_seconds: float = 0.0
    compile_cached: bool = False
    run_seconds: float = 0.0
    stdout: str = ""
    stderr: str = ""

    def summary(self) -> str:
        """One line: PASS with counts and times, or what went wrong."""
        times = f"compile {self.compile_seconds:.2f} s{' (cached)' if self.compile_cached else ''}"
        times += f", run {self.run_seconds:.2f} s"
        if self.passed:
            return f"PASS: {self.n_compared} integers equal ({times})"
        if self.deadlock:
            what = self.deadlock.describe()
        elif self.mismatch:
            what = self.mismatch.describe()
        else:
            what = self.error or "failed"
        return f"FAIL: {what} ({times})"


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def run_testbench(
    binary: Binary,
    run_dir: str | Path,
    inputs: Mapping[Port, np.ndarray],
    expected: Mapping[Port, np.ndarray],
    *,
    args: Sequence[str] = (),
    timeout: float = DEFAULT_RUN_TIMEOUT,
) -> CppSimResult:
    """Write ``inputs`` into ``run_dir``, run ``binary`` there with ``args``, compare outputs.

    Each output ``<port>.bin`` must hold exactly ``expected[port].size`` values. The run fails
    on a deadlock report, an HLS_SIM error or warning (e.g. a stream destroyed with unread data),
    a non-zero exit, a missing or short output, or any differing value. A binary still running
    after ``timeout`` seconds is killed (a safety net for livelocks and bugs; blocked-stream
    deadlocks are reported by the simulation itself).
    """
    run_path = Path(run_dir)
    run_path.mkdir(parents=True, exist_ok=True)
    for port, values in inputs.items():
        write_stream_file(run_path / port.file_name, port, values)
    for port, values in expected.items():
        port.check(values)
        (run_path / port.file_name).unlink(missing_ok=True)
    result = CppSimResult(
        passed=False, compile_seconds=binary.compile_seconds, compile_cached=binary.cached
    )
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [str(binary.path.resolve()), *args],
            cwd=run_path,
            capture_output=True,
            text=True,
            timeout=timeout,
            errors="replace",
        )
    except subprocess.TimeoutExpired as exc:
        result.run_seconds = time.perf_counter() - start
        result.timed_out = True
        result.stdout = _text(exc.stdout)
        result.stderr = _text(exc.stderr)
        result.error = (
            f"killed after {timeout:g} s without finishing (hung or livelocked; a deadlock on "
            "blocking stream calls would have been reported by hls_stream.h)"
        )
        return result
    result.run_seconds = time.perf_counter() - start
    result.returncode = done.returncode
    result.stdout, result.stderr = done.stdout, done.stderr
    result.messages = _MARKED_LINE.findall(done.stderr)
    result.deadlock = parse_deadlock(done.stderr)
    if result.deadlock is not None:
        result.error = result.deadlock.describe()
        return result
    if done.returncode != 0:
        why = (
            f"killed by {_signal_name(done.returncode)}"
            if done.returncode < 0
            else f"exit code {done.returncode}"
        )
        tail = result.messages or done.stderr.strip().splitlines()[-3:]
        result.error = f"{binary.path.name} {why}" + (f": {' | '.join(tail)}" if tail else "")
        return result
    if result.messages:
        result.error = " | ".join(result.messages)
        return result
    for port, values in expected.items():
        path = run_path / port.file_name
        if not path.is_file():
            result.error = f"{port.name}: the testbench wrote no {port.file_name}"
            return result
        got = read_stream_file(path)
        if got.size != np.size(values):
            result.error = f"{port.name}: {got.size} values written, {np.size(values)} expected"
            return result
        mismatch = compare(port.name, values, got)
        result.n_compared += got.size
        if mismatch is not None and result.mismatch is None:
            result.mismatch = mismatch
    result.passed = result.mismatch is None
    return result


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


def simulate(
    sources: Mapping[str, str],
    work_dir: str | Path,
    inputs: Mapping[Port, np.ndarray],
    expected: Mapping[Port, np.ndarray],
    *,
    args: Sequence[str] = (),
    run_name: str = "run",
    timeout: float = DEFAULT_RUN_TIMEOUT,
) -> CppSimResult:
    """Compile ``sources`` in ``work_dir`` (cached) and run them once in ``work_dir/run_name``."""
    binary = compile_sources(sources, work_dir)
    return run_testbench(
        binary, Path(work_dir) / run_name, inputs, expected, args=args, timeout=timeout
    )
