"""Bitstreams: copy a finished build's ``.bit`` and ``.hwh`` into ``bitstreams/<name>/`` with a
manifest (model hash, board, clock, folding, tool versions, file hashes)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from hw_gen.errors import HwGenError

BITSTREAMS_DIR = Path(__file__).resolve().parent.parent / "bitstreams"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


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
        "tools": _tool_versions(),
        "files": files,
    }
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return dest


def _tool_versions() -> dict[str, str]:
    import importlib.metadata as md
    import os

    versions = {pkg: md.version(pkg) for pkg in ("finn-plus", "qonnx", "brevitas", "torch")}
    versions["vivado"] = os.environ.get("XILINX_VIVADO", "")
    return versions
