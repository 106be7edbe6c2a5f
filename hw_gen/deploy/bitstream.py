"""Bitstreams: copy a finished build's ``.bit`` and ``.hwh`` into ``bitstreams/<name>/`` with
``manifest.json``: model hash, board, clock, folding, FIFO depths, the accelerator's ports
(what the driver checks), tool and package versions, file hashes."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from hw_gen.errors import HwGenError

BITSTREAMS_DIR = Path(__file__).resolve().parents[2] / "bitstreams"
# Written into every output of the vendor-tool stand-ins; never allowed into bitstreams/.
PLACEHOLDER_MARK = b"HWGEN-PLACEHOLDER: written by a vendor-tool stand-in, not by Xilinx tools"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fifo_depths(out: Path) -> dict[str, int]:
    """``{FIFO node: depth}`` as FINN's FIFO step reported them (``fifo_sizing.json``)."""
    report = Path(out) / "vendor" / "report" / "fifo_sizing.json"
    return json.loads(report.read_text())["fifo_depths"] if report.exists() else {}


def collect_bitstream(
    out: Path, model_path: str | Path, board: str, clk_ns: float,
    dest_root: Path = BITSTREAMS_DIR, name: str | None = None,
) -> Path:
    """Copy the bitfile and hardware handoff FINN wrote under ``out`` into
    ``dest_root/<name>/`` and write ``manifest.json`` beside them."""
    bits = sorted(Path(out).rglob("*.bit"))
    hwhs = sorted(Path(out).rglob("*.hwh"))
    if not bits or not hwhs:
        raise HwGenError(f"no .bit/.hwh under {out}: the vendor flow did not produce them")
    for src in (bits[0], hwhs[0]):
        if PLACEHOLDER_MARK in src.read_bytes():
            raise HwGenError(f"{src}: a vendor-tool stand-in's placeholder, not a bitstream")
    name = name or Path(model_path).stem
    dest = Path(dest_root) / name
    dest.mkdir(parents=True, exist_ok=True)
    files = {}
    for src, target in ((bits[0], f"{name}.bit"), (hwhs[0], f"{name}.hwh")):
        shutil.copyfile(src, dest / target)
        files[target] = sha256(dest / target)
    layers = Path(out) / "layers.json"
    folding = json.loads(layers.read_text())["layers"] if layers.exists() else []
    manifest = {
        "model": str(model_path),
        "model_sha256": sha256(Path(model_path)),
        "board": board,
        "clock_ns": clk_ns,
        "folding": {row["name"]: {"PE": row["pe"], "SIMD": row["simd"]} for row in folding},
        "fifo_depths": fifo_depths(Path(out)),
        "io": _ports(Path(out)),
        "tools": _tool_versions(),
        "files": files,
    }
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return dest


def _ports(out: Path) -> dict:
    """The accelerator's ports as the deploy package's ``io.json`` describes them."""
    if not (out / "dataflow.onnx").exists():
        return {}
    from hw_gen.deploy.iodesc import write_io

    context = json.loads((out / "steps" / "context.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        io = write_io(out / "dataflow.onnx", Path(tmp), {}, context.get("input", {}))
    keys = ("name", "dma", "dtype", "shape", "folded_shape", "packed_shape")
    return {kind: [{k: p[k] for k in keys} for p in io[kind]] for kind in ("inputs", "outputs")}


def _tool_versions() -> dict[str, str]:
    import importlib.metadata as md
    import os

    versions = {pkg: md.version(pkg) for pkg in ("finn-plus", "qonnx", "brevitas", "torch")}
    versions["vivado"] = os.environ.get("XILINX_VIVADO", "")
    return versions
