"""``hw-gen deploy OUT -o PKG``: the folder a user copies to the board.

PKG/
  driver/, sim/          the driver and the simulator its sim backend runs (numpy only)
  io.json                the I/O description (``driver/iospec.py`` documents it)
  accelerator.sim.*      the accelerator's hardware layers as a sim bundle
  bitstream/             ``.bit``, ``.hwh``, ``manifest.json`` when a bitstream was built
  report/                the build's report, when there is one
  notebooks/             the PYNQ demo notebook
  samples.npz            sample images (and labels) from the synthetic set at the input size
  README.md              how to run it
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from hw_gen.deploy.bitstream import BITSTREAMS_DIR, PLACEHOLDER_MARK, sha256
from hw_gen.errors import HwGenError

REPO = Path(__file__).resolve().parents[2]
SAMPLES = 6

PACKAGE_README = """\
# Deploy package: {name}

Built for {board} at {clock_ns} ns from model sha256 {model_sha256}.

```python
from driver import Accelerator
acc = Accelerator(".", backend="pynq")    # on the board; backend="sim" anywhere with numpy
out = acc.execute(images)                 # uint8 N x {h} x {w} x {c}
labels = out.predicted()                  # N x {h} x {w}
```

`python -m driver . --input X.npy --output Y.npy [--backend sim]` does the same from the shell.
`notebooks/demo.ipynb` segments the sample images in `samples.npz`.
Bitstream: {bitstream}.
"""


def _copy_tree(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _find_bitstream(model_sha: str, explicit: Path | None) -> Path | None:
    if explicit is not None:
        if not (explicit / "manifest.json").exists():
            raise HwGenError(f"--bitstream {explicit}: no manifest.json there")
        return explicit
    for manifest in sorted(BITSTREAMS_DIR.glob("*/manifest.json")):
        if json.loads(manifest.read_text()).get("model_sha256") == model_sha:
            return manifest.parent
    return None


def _check_no_placeholder(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_file() and PLACEHOLDER_MARK in path.read_bytes():
            raise HwGenError(f"{path}: a vendor-tool stand-in's placeholder, not a bitstream")


def _samples(shape: list[int]) -> dict[str, np.ndarray]:
    _, h, w, c = shape
    if c == 3 and min(h, w) >= 16:
        from brevitas_models.data.synthetic import generate

        images, labels = generate(SAMPLES, h, w, seed=0, split="test")
        return {"images": images, "labels": labels}
    rng = np.random.default_rng(0)
    return {"images": rng.integers(0, 256, (SAMPLES, h, w, c)).astype(np.uint8)}


def _write(out: Path, dest: Path, info: dict, context: dict, name: str,
           found: Path | None) -> None:
    from hw_gen.deploy.iodesc import write_io

    dest.mkdir(parents=True)
    io = write_io(out / "dataflow.onnx", dest, info, context.get("input", {}))
    (dest / "io.json").write_text(json.dumps(io, indent=1, sort_keys=True))
    _copy_tree(REPO / "driver", dest / "driver")
    _copy_tree(REPO / "sim", dest / "sim")
    (dest / "notebooks").mkdir()
    shutil.copyfile(REPO / "notebooks" / "demo.ipynb", dest / "notebooks" / "demo.ipynb")
    np.savez_compressed(dest / "samples.npz", **_samples(io["inputs"][0]["shape"]))
    if (out / "report").is_dir():
        _copy_tree(out / "report", dest / "report")
    if found is not None:
        _check_no_placeholder(found)
        from driver import DriverError
        from driver.iospec import check_manifest, load_spec

        try:
            check_manifest(load_spec(dest), found / "manifest.json")
        except DriverError as exc:
            raise HwGenError(f"the bitstream does not fit this build: {exc}") from None
        _copy_tree(found, dest / "bitstream")
    _, h, w, c = io["inputs"][0]["shape"]
    (dest / "README.md").write_text(PACKAGE_README.format(
        name=name, h=h, w=w, c=c, **info,
        bitstream=f"from {found}" if found else "none yet (simulated backend only)"))


def make_package(out: str | Path, dest: str | Path, bitstream: Path | None = None) -> Path:
    """Write the deploy package of the build in ``out`` to ``dest`` (replaced if it exists,
    only once the new one is complete)."""
    out, dest = Path(out), Path(dest)
    record = out / "verification.json"
    dataflow = out / "dataflow.onnx"
    context_path = out / "steps" / "context.json"
    if not all(p.exists() for p in (record, dataflow, context_path)):
        raise HwGenError(f"{out}: not a build folder (run `hw-gen build MODEL -o {out}` first)")
    meta = json.loads(record.read_text())
    model = Path(meta["model"])
    if not model.exists():
        raise HwGenError(f"{record}: its model {model} is gone; the package records its hash")
    context = json.loads(context_path.read_text())
    info = {"model_sha256": sha256(model), "board": meta["board"], "clock_ns": meta["clock_ns"]}
    found = _find_bitstream(info["model_sha256"], bitstream)
    partial = dest.with_name(dest.name + ".partial")  # nothing half-written under dest
    if partial.exists():
        shutil.rmtree(partial)
    try:
        _write(out, partial, info, context, model.stem, found)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if dest.exists():
        shutil.rmtree(dest)
    partial.rename(dest)
    return dest
