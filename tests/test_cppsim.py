"""The g++ C-simulation harness: our hls_stream.h, tb_io.h and hw_gen.cppsim, on real fixtures."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np
import pytest

from hw_gen import cppsim
from hw_gen.cppsim import CompileError, CppSimError, Port

CPP_DIR = Path(__file__).parent / "cpp"
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not on PATH")


# ---------------------------------------------------------------------------------------------
# Elementwise kernel: y = (x * mul + add) >> shift, a three-process dataflow region


@dataclass(frozen=True)
class Elementwise:
    name: str
    in_bits: int
    in_signed: bool
    pe: int
    shape: tuple[int, int, int, int]  # NHWC
    mul: int
    add: int
    shift: int
    depth: int = 2

    @property
    def in_port(self) -> Port:
        return Port("in", self.in_bits, self.in_signed, self.pe)

    def reference(self, x: np.ndarray) -> np.ndarray:
        return (x.astype(np.int64) * self.mul + self.add) >> self.shift

    @property
    def out_range(self) -> tuple[int, int]:
        ends = self.reference(np.array(self.in_port.value_range))
        return int(ends.min()), int(ends.max())

    @property
    def out_signed(self) -> bool:
        return self.out_range[0] < 0

    @property
    def out_bits(self) -> int:
        lo, hi = self.out_range
        if self.out_signed:
            return max(max(hi, 0).bit_length(), (-lo - 1).bit_length()) + 1
        return max(hi.bit_length(), 1)

    @property
    def out_port(self) -> Port:
        return Port("out", self.out_bits, self.out_signed, self.pe)

    @property
    def words(self) -> int:
        return int(np.prod(self.shape)) // self.pe

    def random_input(self, seed: int) -> np.ndarray:
        lo, hi = self.in_port.value_range
        x = np.random.default_rng(seed).integers(lo, hi, size=self.shape, endpoint=True)
        x.reshape(-1)[:2] = (lo, hi)  # both ends of the type, always
        return x


CONFIGS = (
    Elementwise("u4_pe1", 4, False, 1, (2, 3, 5, 3), mul=3, add=1, shift=0),
    Elementwise("s5_pe3", 5, True, 3, (2, 3, 5, 6), mul=-7, add=3, shift=2),
    Elementwise("s1_pe5_depth1", 1, True, 5, (1, 7, 3, 5), mul=5, add=-2, shift=1, depth=1),
    Elementwise("u12_pe16_wide", 12, False, 16, (1, 3, 3, 32), mul=1000, add=7, shift=3),
    Elementwise("s9_pe7_odd", 9, True, 7, (3, 1, 5, 7), mul=11, add=-300, shift=4, depth=3),
)


def render_elementwise(configs: tuple[Elementwise, ...]) -> dict[str, str]:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(CPP_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return {
        name: env.get_template(f"{name}.j2").render(configs=configs)
        for name in ("elementwise.h", "elementwise.cpp", "elementwise_tb.cpp")
    }


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cppsim")


@pytest.fixture(scope="module")
def elementwise_binary(work: Path) -> cppsim.Binary:
    if shutil.which("g++") is None:
        pytest.skip("g++ is not on PATH")
    return cppsim.compile_sources(render_elementwise(CONFIGS), work)


@pytest.fixture(scope="module")
def fixtures_binary(work: Path) -> cppsim.Binary:
    if shutil.which("g++") is None:
        pytest.skip("g++ is not on PATH")
    name = "stream_fixtures.cpp"
    return cppsim.compile_sources({name: (CPP_DIR / name).read_text()}, work)


@needs_gxx
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_elementwise_matches_numpy(
    config: Elementwise, elementwise_binary: cppsim.Binary, work: Path
) -> None:
    x = config.random_input(seed=len(config.name))
    expected = config.reference(x)
    result = cppsim.run_testbench(
        elementwise_binary,
        work / f"run_{config.name}",
        {config.in_port: x},
        {config.out_port: expected},
        args=[config.name],
    )
    assert result.passed, result.summary()
    assert result.n_compared == x.size
    got = cppsim.read_stream_file(work / f"run_{config.name}" / "out.bin").reshape(config.shape)
    assert np.array_equal(got, expected)
    assert (got.min() < 0) == config.out_signed


@needs_gxx
def test_mismatch_reports_first_difference(elementwise_binary: cppsim.Binary, work: Path) -> None:
    config = CONFIGS[1]
    x = config.random_input(seed=7)
    wrong = config.reference(x)
    lo, hi = config.out_port.value_range
    for flat in (77, 40):
        wrong.reshape(-1)[flat] = lo if wrong.reshape(-1)[flat] != lo else hi
    truth = config.reference(x)
    result = cppsim.run_testbench(
        elementwise_binary, work / "mismatch", {config.in_port: x}, {config.out_port: wrong},
        args=[config.name],
    )
    assert not result.passed and result.deadlock is None and result.error is None
    m = result.mismatch
    assert m is not None and (m.flat_index, m.count, m.total) == (40, 2, x.size)
    assert m.index == tuple(int(i) for i in np.unravel_index(40, config.shape))
    assert (m.expected, m.got) == (int(wrong.reshape(-1)[40]), int(truth.reshape(-1)[40]))
    frame, row, col, channel = m.index
    assert f"frame={frame}, row={row}, col={col}, channel={channel}" in result.summary()
    assert "2 of 180 values differ" in result.summary()


@needs_gxx
def test_compile_is_cached_and_sources_are_relocatable(
    elementwise_binary: cppsim.Binary, work: Path
) -> None:
    config = CONFIGS[0]
    x = config.random_input(seed=5)
    expected = {config.out_port: config.reference(x)}
    result = cppsim.simulate(
        render_elementwise(CONFIGS), work, {config.in_port: x}, expected,
        args=[config.name], run_name="cached",
    )
    assert result.passed and result.compile_cached and result.compile_seconds == 0.0
    assert (work / "cached" / "out.bin").is_file()
    again = cppsim.compile_sources(render_elementwise(CONFIGS), work)
    assert again.cached and again.path == elementwise_binary.path
    for path in again.path.parent.iterdir():
        if path.suffix in (".cpp", ".h"):
            assert str(work) not in path.read_text() and "/tmp" not in path.read_text()


@needs_gxx
def test_word_layout_is_finns(fixtures_binary: cppsim.Binary, work: Path) -> None:
    """Element k of a word at bits [k*W, (k+1)*W), two's complement; checked bit by bit."""
    elements = np.random.default_rng(11).integers(-8, 8, size=(1, 4, 4, 6))
    elements.reshape(-1)[:3] = (-8, 7, -1)
    nibbles = (elements.reshape(-1, 3) & 0xF).astype(np.int64)
    words = nibbles[:, 0] | nibbles[:, 1] << 4 | nibbles[:, 2] << 8
    int4_pe3 = Port("in", 4, True, pe=3)
    uint12 = Port("out", 12, False)
    assert words[0] == 0xF78
    packed = cppsim.run_testbench(
        fixtures_binary, work / "pack", {int4_pe3: elements}, {uint12: words}, args=["pack"]
    )
    assert packed.passed, packed.summary()
    unpacked = cppsim.run_testbench(
        fixtures_binary, work / "unpack", {Port("in", 12, False): words},
        {Port("out", 4, True, pe=3): elements}, args=["unpack"],
    )
    assert unpacked.passed, unpacked.summary()


@needs_gxx
def test_input_out_of_range_is_refused_before_running(
    elementwise_binary: cppsim.Binary, work: Path
) -> None:
    config = CONFIGS[0]
    x = config.random_input(seed=1)
    x.reshape(-1)[3] = 16
    with pytest.raises(ValueError, match=r"port in: values in \[0, 16\] do not fit uint4"):
        cppsim.run_testbench(
            elementwise_binary, work / "range", {config.in_port: x}, {}, args=[config.name]
        )


# ---------------------------------------------------------------------------------------------
# Deadlock detection and failure reporting

U16 = Port("in", 16, False)
U16_OUT = Port("out", 16, False)


def _u16_input(shape: tuple[int, ...], seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1 << 16, size=shape)


def _forkjoin_reference(x: np.ndarray) -> np.ndarray:
    return np.stack([x, (x + 1) & 0xFFFF], axis=-1).reshape(*x.shape[:-1], 2 * x.shape[-1])


def _run_fixture(binary: cppsim.Binary, work: Path, fixture: str, x: np.ndarray,
                 expected: np.ndarray, timeout: float = cppsim.DEFAULT_RUN_TIMEOUT
                 ) -> cppsim.CppSimResult:
    return cppsim.run_testbench(
        binary, work / fixture, {U16: x}, {U16_OUT: expected}, args=[fixture], timeout=timeout
    )


def _chain_reference(x: np.ndarray) -> np.ndarray:
    return (x + 6) & 0xFFFF


PASSING_FIXTURES = (
    # fork/join whose short branch FIFO has exactly the depth the delay needs
    ("forkjoin_ok", (2, 10, 10, 4), _forkjoin_reference),
    # 20000 words through six threads joined by depth-1 FIFOs: no false deadlock
    ("chain", (1, 50, 40, 10), _chain_reference),
    # testbench feeding and draining concurrently; the design's region nested in a process
    ("nested", (1, 20, 20, 5), _chain_reference),
    # every stream call of Vitis HLS code, struct elements, depth-templated streams by base ref
    ("api", (1, 30, 10, 3), lambda x: x),
)


@needs_gxx
@pytest.mark.parametrize(
    "fixture,shape,reference", PASSING_FIXTURES, ids=[f[0] for f in PASSING_FIXTURES]
)
def test_dataflow_fixture_passes(
    fixture: str, shape: tuple[int, ...], reference, fixtures_binary: cppsim.Binary, work: Path
) -> None:
    x = _u16_input(shape)
    result = _run_fixture(fixtures_binary, work, fixture, x, reference(x))
    assert result.passed, result.summary()
    assert result.n_compared == reference(x).size


DEADLOCKING_FIXTURES = (
    # the fork/join whose short FIFO `a` is one element shorter than the delay needs
    ("forkjoin_deadlock", (1, 4, 5, 3), _forkjoin_reference, {
        ("forkjoin/fork", "write", "a", 7, 7),
        ("forkjoin/delay", "read", "b", 0, 2),
        ("forkjoin/join", "read", "d", 0, 2),
    }),
    # the testbench thread reads one word more than the design wrote
    ("overread", (1, 2, 2, 3), _chain_reference, {("main", "read", "out", 0, 24)}),
)


@needs_gxx
@pytest.mark.parametrize(
    "fixture,shape,reference,blocked",
    DEADLOCKING_FIXTURES,
    ids=[f[0] for f in DEADLOCKING_FIXTURES],
)
def test_deadlock_is_reported(
    fixture: str, shape: tuple[int, ...], reference, blocked: set[tuple],
    fixtures_binary: cppsim.Binary, work: Path,
) -> None:
    x = _u16_input(shape)
    result = _run_fixture(fixtures_binary, work, fixture, x, reference(x))
    assert not result.passed and not result.timed_out
    assert result.returncode == cppsim.deadlock_exit_code()
    assert result.deadlock is not None
    got = {(b.process, b.op, b.stream, b.size, b.depth) for b in result.deadlock.blocked}
    assert got == blocked
    assert result.summary().startswith("FAIL: deadlock: ")
    for process, op, stream, _, depth in blocked:
        state = "empty" if op == "read" else "full"
        assert f"{process} waits to {op} {stream} ({state}, depth {depth})" in result.summary()


@needs_gxx
def test_unread_data_fails_the_run(fixtures_binary: cppsim.Binary, work: Path) -> None:
    x = _u16_input((1, 2, 2, 3))
    expected = _chain_reference(x).reshape(-1)[:-1]
    result = _run_fixture(fixtures_binary, work, "leftover", x, expected)
    assert not result.passed and result.returncode == 0
    assert result.error == 'HLS_SIM WARNING stream="in" destroyed holding 1 unread element(s)'


@needs_gxx
def test_process_exception_is_reported(fixtures_binary: cppsim.Binary, work: Path) -> None:
    x = _u16_input((1, 2, 2, 3))
    result = _run_fixture(fixtures_binary, work, "throws", x, x)
    assert not result.passed and result.returncode == cppsim.error_exit_code()
    assert 'process "throws/thrower" threw: element 6 rejected' in result.error


@needs_gxx
def test_livelock_is_killed_by_the_timeout(fixtures_binary: cppsim.Binary, work: Path) -> None:
    x = _u16_input((1, 1, 1, 2))
    result = _run_fixture(fixtures_binary, work, "livelock", x, x, timeout=1.5)
    assert result.timed_out and not result.passed and result.deadlock is None
    assert result.error.startswith("killed after 1.5 s without finishing")


@needs_gxx
def test_compile_error_is_clear(work: Path) -> None:
    source = '#include "tb_io.h"\nint main() {\n  return undefined_helper(3);\n}\n'
    with pytest.raises(CompileError) as info:
        cppsim.compile_sources({"broken.cpp": source}, work)
    message = str(info.value)
    assert message.startswith("g++ failed on broken.cpp")
    assert "broken.cpp:3:10: error: 'undefined_helper' was not declared" in message.replace(
        "\u2018", "'").replace("\u2019", "'")
    assert len(message.splitlines()) <= 14
    with pytest.raises(CompileError, match=r"(?s)could not link main.cpp.o .*undefined reference"):
        cppsim.compile_sources({"main.cpp": "int f();\nint main() { return f(); }\n"}, work)


@needs_gxx
def test_synthesis_build_uses_the_vendor_stream_and_sequential_calls(tmp_path: Path) -> None:
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    (vendor / "hls_stream.h").write_text(
        "#define VENDOR_STREAM 1\n"
        "namespace hls {\n"
        "template <typename T, int DEPTH = 0> struct stream {\n"
        "  T v[64]; int n = 0, r = 0;\n"
        "  void write(const T& x) { v[n++] = x; }\n"
        "  T read() { return v[r++]; }\n"
        "};\n"
        "}\n"
    )
    (tmp_path / "top.cpp").write_text(
        "#include <hls_stream.h>\n"
        "#include <cstdio>\n"
        "#ifndef VENDOR_STREAM\n#error our stream model leaked into synthesis\n#endif\n"
        "#ifdef HLS_SIM_EXIT_DEADLOCK\n#error simulation code leaked into synthesis\n#endif\n"
        "template <int A, int B> void produce(hls::stream<int>& s) {\n"
        "  for (int i = 0; i < 4; ++i) s.write(A * i + B);\n}\n"
        "void consume(hls::stream<int>& s, int* sum) {\n"
        "  for (int i = 0; i < 4; ++i) *sum += s.read();\n}\n"
        "int main() {\n"
        "#pragma HLS DATAFLOW\n"
        "  hls::stream<int> s; int sum = 0;\n"
        '  HLS_DATAFLOW_BEGIN("top");\n'
        '  HLS_DATAFLOW_PROCESS("produce", produce<3, 1>(s));\n'
        '  HLS_DATAFLOW_PROCESS("consume", consume(s, &sum));\n'
        "  HLS_DATAFLOW_END();\n"
        '  std::printf("%d\\n", sum);\n'
        "  return 0;\n}\n"
    )
    subprocess.run(
        ["g++", *cppsim.CXXFLAGS, "-D__SYNTHESIS__", "-I", str(cppsim.TEMPLATES_DIR),
         "-I", str(vendor), "top.cpp", "-o", "top"],
        cwd=tmp_path, check=True, capture_output=True, text=True,
    )
    done = subprocess.run([str(tmp_path / "top")], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(sum(3 * i + 1 for i in range(4)))


# ---------------------------------------------------------------------------------------------
# Pure Python parts


def test_ap_types_located_without_importing_hls4ml() -> None:
    code = (
        "import sys; from hw_gen import cppsim; d = cppsim.ap_types_dir(); "
        "assert (d / 'ap_int.h').is_file(); assert 'hls4ml' not in sys.modules, 'imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_missing_hls4ml_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cppsim.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(CppSimError, match="hls4ml is not installed"):
        cppsim.ap_types_dir()


def test_port_checks() -> None:
    with pytest.raises(ValueError, match="not a multiple of pe=4"):
        Port("x", 3, False, pe=4).check(np.zeros((2, 6), dtype=np.int64))
    with pytest.raises(ValueError, match=r"do not fit int3 \[-4, 3\]"):
        Port("x", 3, True).check(np.array([[-5, 0]]))
    with pytest.raises(ValueError, match="integer array expected"):
        Port("x", 3, True).check(np.array([0.5]))
    with pytest.raises(ValueError, match="bits=64 outside 1..63"):
        Port("x", 64, False)
    assert Port("x", 1, True).value_range == (-1, 0)


def test_stream_file_roundtrip(tmp_path: Path) -> None:
    port = Port("x", 64, True, pe=2)
    values = np.array([[np.iinfo(np.int64).min, -1], [0, np.iinfo(np.int64).max]])
    cppsim.write_stream_file(tmp_path / "x.bin", port, values)
    raw = (tmp_path / "x.bin").read_bytes()
    assert len(raw) == 32 and raw[8:16] == b"\xff" * 8 and raw[:8] == b"\0" * 7 + b"\x80"
    assert np.array_equal(cppsim.read_stream_file(tmp_path / "x.bin"), values.reshape(-1))


def test_compare() -> None:
    expected = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    assert cppsim.compare("y", expected, expected.reshape(-1).copy()) is None
    got = expected.reshape(-1).copy()
    got[[70, 100]] += 1
    m = cppsim.compare("y", expected, got)
    assert m is not None and (m.flat_index, m.index, m.count, m.expected, m.got) == (
        70, (1, 0, 2, 0), 2, 70, 71)
    assert m.describe() == (
        "y: 2 of 120 values differ; first at flat index 70 (frame=1, row=0, col=2, channel=0): "
        "expected 70, got 71"
    )
    with pytest.raises(ValueError, match="119 values to compare with 120 expected"):
        cppsim.compare("y", expected, got[:-1])


def test_parse_deadlock() -> None:
    text = (
        "noise\nHLS_SIM DEADLOCK all 2 live process(es) are blocked on streams\n"
        'HLS_SIM DEADLOCK process="top/a" op=write stream="s.0" state=full size=4 depth=4\n'
        'HLS_SIM DEADLOCK process="main" op=read stream="out" state=empty size=0 depth=9\n'
    )
    report = cppsim.parse_deadlock(text)
    assert report is not None and report.streams == {"s.0", "out"}
    assert report.describe() == (
        "deadlock: top/a waits to write s.0 (full, depth 4); "
        "main waits to read out (empty, depth 9)"
    )
    assert cppsim.parse_deadlock("all fine\n") is None
    assert cppsim.deadlock_exit_code() != cppsim.error_exit_code()
