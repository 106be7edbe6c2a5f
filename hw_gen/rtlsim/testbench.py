"""Our C++ testbench around a Verilated model: rendering it, and running it on a tensor.

Streams are packed with FINN's conventions (``sim.packing``): the tensor is folded to the
port's folded shape and each word's lanes are packed LSB first (lane 0 in bits 0..b-1), as
FINN's RTL simulation and C++ testbenches do. ``lsb_first=False`` packs them the other way
round; it exists so a test can show that a swapped lane order is caught.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw_gen.errors import HwGenError
from hw_gen.rtlsim.layer import StreamPort
from hw_gen.templating import render
from sim.packing import pack_words, unpack_words

RUN_TIMEOUT = 600.0
STALL_CYCLES = 100_000  # no transfer on either side for this long: the layer is stuck


@dataclass(frozen=True)
class Backpressure:
    """Percent of cycles the source offers a beat and the sink accepts one, and the seed."""

    p_valid: int = 100
    p_ready: int = 100
    seed: int = 0

    @property
    def free(self) -> bool:
        return self.p_valid == 100 and self.p_ready == 100


@dataclass(frozen=True)
class Trace:
    outputs: np.ndarray  # unpacked, folded output shape
    stamps: np.ndarray  # cycle of each output beat (cycle 0: first cycle after reset)
    first_in: int  # cycle the first input beat was taken
    extra: int  # output beats beyond the expected ones


def render_testbench(top: str, inp: StreamPort, out: StreamPort) -> str:
    return render("rtlsim/axis_tb.cpp.j2", top=top, in_port=inp.name, out_port=out.name,
                  in_bits=inp.bits, out_bits=out.bits, in_words=inp.words32,
                  out_words=out.words32)


def _to_u32(words: np.ndarray, n32: int) -> np.ndarray:
    data = b"".join(int(w).to_bytes(4 * n32, "little") for w in words.reshape(-1))
    return np.frombuffer(data, dtype="<u4")


def _from_u32(raw: np.ndarray, n32: int) -> np.ndarray:
    rows = raw.reshape(-1, n32).astype(np.uint64)
    words = np.empty(rows.shape[0], dtype=object)
    for i, row in enumerate(rows):
        words[i] = sum(int(v) << (32 * k) for k, v in enumerate(row))
    return words


def pack_stream(x: np.ndarray, port: StreamPort, lsb_first: bool = True) -> np.ndarray:
    """Tensor (normal shape, any number of frames) -> uint32 words, beat after beat."""
    lanes = port.folded_shape[-1]
    folded = np.asarray(x).reshape(-1, lanes)
    return _to_u32(pack_words(folded, port.dtype, reverse_inner=lsb_first), port.words32)


def unpack_stream(raw: np.ndarray, port: StreamPort) -> np.ndarray:
    """uint32 words -> (beats, lanes) element values; bits above the lanes must be zero."""
    words = _from_u32(raw, port.words32)
    from sim.datatypes import dtype

    used = port.lanes * dtype(port.dtype).bits
    if any(int(w) >> used for w in words):
        raise HwGenError(f"{port.name}: output beats carry bits above the {used} data bits")
    return unpack_words(words, port.dtype, port.lanes, reverse_inner=True)


def run_model(binary: Path, run_dir: Path, x: np.ndarray, inp: StreamPort, out: StreamPort,
              out_beats: int, bp: Backpressure, what: str, lsb_first: bool = True) -> Trace:
    """Run the testbench ``binary`` in ``run_dir`` (where its runtime data files are) on the
    tensor ``x``; ``out_beats`` output beats are expected."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tag = f"{bp.p_valid}_{bp.p_ready}_{bp.seed}"
    files = [run_dir / f"{name}_{tag}.bin" for name in ("in", "out", "stamps")]
    words = pack_stream(x, inp, lsb_first)
    words.tofile(files[0])
    in_beats = words.size // inp.words32
    command = [str(binary), *map(str, files), str(in_beats), str(out_beats), str(bp.seed),
               str(bp.p_valid), str(bp.p_ready), str(STALL_CYCLES)]
    try:
        done = subprocess.run(command, cwd=run_dir, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise HwGenError(f"{what}: RTL simulation did not finish in {RUN_TIMEOUT:.0f} s") from exc
    try:
        status = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise HwGenError(f"{what}: testbench exited with {done.returncode}: "
                         f"{done.stderr.strip()[:300]}") from None
    if status.get("stalled"):
        raise HwGenError(f"{what}: stalled: no transfer for {STALL_CYCLES} cycles after "
                         f"{status['sent']} of {in_beats} input and {status['received']} of "
                         f"{out_beats} output beats")
    if done.returncode != 0:
        raise HwGenError(f"{what}: testbench exited with {done.returncode}: {done.stderr[:300]}")
    outputs = unpack_stream(np.fromfile(files[1], dtype="<u4"), out)
    stamps = np.fromfile(files[2], dtype="<u8").astype(np.int64)
    for f in files:
        f.unlink()
    return Trace(outputs, stamps, int(status["first_in"]), int(status["extra"]))
