"""Writes ``demo.ipynb`` (run ``python notebooks/make_demo.py`` after editing the cells here);
the notebook is committed without outputs."""

import json
from pathlib import Path

CELLS = [
    ("markdown", """\
# Binary segmentation on the board

Loads the deploy package this notebook sits in (`hw-gen deploy OUT -o PKG` wrote it), segments
the sample images from the synthetic set (`samples.npz`), shows input, prediction and overlay
side by side, and reports frames/s. On a PYNQ board with the package's bitstream the
accelerator runs in the FPGA; anywhere else the simulated backend runs the same packed bytes
through `sim/`. `HWGEN_PACKAGE` and `HWGEN_BACKEND` override the package folder and backend."""),
    ("code", """\
import os
import sys
import time
from pathlib import Path

import numpy as np

PACKAGE = Path(os.environ.get("HWGEN_PACKAGE", "..")).resolve()
sys.path.insert(0, str(PACKAGE))
from driver import Accelerator

try:
    import pynq  # noqa: F401  (on the board)
    on_board = (PACKAGE / "bitstream").is_dir()
except ImportError:
    on_board = False
BACKEND = os.environ.get("HWGEN_BACKEND", "pynq" if on_board else "sim")
acc = Accelerator(PACKAGE, backend=BACKEND)
print(f"package {PACKAGE.name}: {acc.spec.board}, input {acc.input_shape}, backend {BACKEND}")"""),
    ("code", """\
samples = np.load(PACKAGE / "samples.npz")
images = samples["images"]
t0 = time.perf_counter()
out = acc.execute(images)
seconds = time.perf_counter() - t0
predicted = out.predicted()
print(f"{len(images)} frames in {seconds * 1e3:.1f} ms: {len(images) / seconds:.1f} frames/s "
      f"(backend {BACKEND}, packing included)")
if "labels" in samples.files:
    print(f"pixel accuracy against the synthetic labels: {np.mean(predicted == samples['labels']):.3f}")"""),
    ("code", """\
import matplotlib.pyplot as plt

palette = plt.get_cmap("tab10")(np.arange(10))[:, :3]
rows = min(len(images), 4)
fig, axes = plt.subplots(rows, 3, figsize=(9, 3 * rows), squeeze=False)
for i in range(rows):
    colours = palette[predicted[i] % 10]
    overlay = 0.5 * images[i, ..., :3] / 255.0 + 0.5 * colours
    for ax, picture, title in zip(axes[i], (images[i], colours, overlay),
                                  ("input", "prediction", "overlay")):
        ax.imshow(picture)
        ax.set_title(title)
        ax.axis("off")
fig.tight_layout()
plt.show()"""),
    ("code", """\
result = acc.throughput_test(batch=len(images))
for key, value in result.items():
    print(f"{key:26s} {value:.1f}" if isinstance(value, float) else f"{key:26s} {value}")"""),
]


def notebook() -> dict:
    cells = []
    for i, (kind, source) in enumerate(CELLS):
        cell = {"cell_type": kind, "id": f"cell-{i}", "metadata": {},
                "source": source.splitlines(keepends=True)}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        cells.append(cell)
    return {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                        "name": "python3"},
                         "language_info": {"name": "python"}}}


if __name__ == "__main__":
    path = Path(__file__).with_name("demo.ipynb")
    path.write_text(json.dumps(notebook(), indent=1) + "\n")
    print(f"wrote {path}")
