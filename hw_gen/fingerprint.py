"""What a saved result was made from, by content: a resumed lowering (``--resume``) and a sim
bundle beside a graph are reused only when everything that determines them is the same."""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path

FINGERPRINT_NAME = "fingerprint.json"


def file_digest(path: str | Path | None) -> str | None:
    """sha256 of a file's bytes (None for no file)."""
    if path is None:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def finn_version() -> str:
    try:
        return metadata.version("finn-plus")
    except metadata.PackageNotFoundError:
        return "unknown"


def lowering_fingerprint(
    model_path: str | Path, board: str | None, part: str, clk_ns: float,
    target_fps: float | None, folding_config: str | Path | None, outputs: str,
) -> dict:
    return {
        "model": file_digest(model_path),
        "board": board,
        "part": part,
        "clock_ns": clk_ns,
        "target_fps": target_fps,
        "folding": file_digest(folding_config),
        "outputs": outputs,
        "finn": finn_version(),
    }


def read_fingerprint(folder: Path) -> dict | None:
    path = folder / FINGERPRINT_NAME
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def write_fingerprint(folder: Path, fingerprint: dict) -> None:
    (folder / FINGERPRINT_NAME).write_text(json.dumps(fingerprint, indent=1, sort_keys=True))


def differences(saved: dict | None, now: dict) -> list[str]:
    """What differs, in words ("model differs"); a missing record is a difference too."""
    if saved is None:
        return [f"no {FINGERPRINT_NAME} records what it was built from"]
    return [f"{k} differs" for k in now if saved.get(k) != now[k]]
