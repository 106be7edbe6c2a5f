"""The PYNQ demo notebook, executed with nbclient on the simulated backend inside a deploy
package; the executed copy (with its picture) is kept in build/artifacts/."""

import base64
import os
import shutil
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from driver_nets import NETS, build_and_deploy, export

ARTIFACTS = Path(os.environ.get("HWGEN_ARTIFACTS", Path(__file__).resolve().parents[1]
                                / "build" / "artifacts"))


def test_demo_notebook_runs_on_the_sim_backend(tmp_path, monkeypatch):
    model = export(NETS["binary_padded"](), (1, 3, 32, 32), tmp_path / "model.onnx")
    pkg = build_and_deploy(model, tmp_path)
    monkeypatch.setenv("HWGEN_BACKEND", "sim")
    monkeypatch.delenv("HWGEN_PACKAGE", raising=False)
    nb = nbformat.read(pkg / "notebooks" / "demo.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(pkg / "notebooks")}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "backend sim" in text and "frames/s" in text
    pngs = [o["data"]["image/png"] for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == 1 and base64.b64decode(pngs[0])[:8] == b"\x89PNG\r\n\x1a\n"
    executed = pkg / "notebooks" / "demo.executed.ipynb"
    nbformat.write(nb, executed)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(executed, ARTIFACTS / "demo.executed.ipynb")
