"""``python -m brevitas_models``: train / evaluate / export / opcount, bad input in one line,
training under torchrun (two gloo processes) in step and resumed where it stopped, and
exported integers independent of mixed precision."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from brevitas_models.cli import main
from brevitas_models.configs import build_config
from brevitas_models.export import export_qonnx
from brevitas_models.train import load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--config", "seg-r18-tiny", "--batch-size", "2", "--train-size", "8", "--threads", "1"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    done = run("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "brevitas_models", "train", *TINY, "--no-eval", *args, cwd=cwd)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_two_gloo_processes_stay_in_step_and_resume_where_they_stopped(tmp_path):
    torchrun("--steps", "4", "--out", "straight", cwd=tmp_path)
    stopped = torchrun("--steps", "4", "--stop-at", "2", "--out", "resumed", cwd=tmp_path)
    assert "stopped at step 2 of 4" in stopped.stdout
    assert torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["step"] == 2
    torchrun("--steps", "4", "--resume", "--out", "resumed", cwd=tmp_path)
    straight, meta = load_checkpoint(tmp_path / "straight" / "seg-r18-tiny.pt")
    resumed, meta_r = load_checkpoint(tmp_path / "resumed" / "seg-r18-tiny.pt")
    assert meta["world_size"] == 2 and meta["ranks_in_step"] and meta_r["ranks_in_step"]
    assert meta["steps_done"] == meta_r["steps_done"] == 4
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    torch.manual_seed(0)
    initial = build_config("seg-r18-tiny").state_dict()
    assert not torch.equal(initial["head.conv.weight"], straight["head.conv.weight"])


def integer_initializers(path: Path) -> dict[str, np.ndarray]:
    model = onnx.load(str(path))
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def test_exported_integers_do_not_depend_on_mixed_precision(tmp_path):
    torch.manual_seed(0)
    model = build_config("seg-r18-tiny")
    x = torch.randint(0, 256, (1, 3, 64, 64), generator=torch.Generator().manual_seed(0)) / 255.0
    plain = export_qonnx(model, x, tmp_path / "plain.onnx")
    # as in a training script that exports inside its autocast region (AMP keeps float32
    # weights; autocast changes the arithmetic): the export leaves autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(x).dtype == torch.bfloat16
        mixed = export_qonnx(model, x, tmp_path / "amp.onnx")
    a, b = integer_initializers(plain), integer_initializers(mixed)
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_train_evaluate_export_opcount(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "2", "--val-size", "4", "--out", str(out)]) == 0
    checkpoint = out / "seg-r18-tiny.pt"
    assert main(["evaluate", str(checkpoint), "--val-size", "4", "--threads", "1"]) == 0
    assert "mIoU" in capsys.readouterr().out
    assert main(["export", str(checkpoint), "-o", str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").is_file()
    assert main(["opcount", "--config", "seg-r18-tiny", "--threads", "1"]) == 0
    assert "speedup against the full-precision twin" in capsys.readouterr().out


def one_error_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_input_is_one_line(tmp_path, capsys):
    (tmp_path / "wrong").mkdir()
    assert "expected" in one_error_line(
        capsys, ["train", "--config", "road-r18-tiny", "--data-root", str(tmp_path / "wrong")])
    assert "unknown configuration" in one_error_line(capsys, ["opcount", "--config", "nope"])
    assert "must be a multiple of 32" in one_error_line(
        capsys, ["export", "--net", "seg-r18-tiny", "--size", "64", "70", "-o", str(tmp_path / "x.onnx")])
    assert not (tmp_path / "x.onnx").exists()
    other = build_config("sod-r18-tiny")
    path = save_checkpoint(tmp_path / "sod.pt", other, {"name": other.name, "config": "sod-r18-tiny",
                                                       "binary": True})
    assert "not configuration 'seg-r18-tiny'" in one_error_line(
        capsys, ["evaluate", str(path), "--config", "seg-r18-tiny"])
    demo = tmp_path / "demo.pt"
    save_checkpoint(demo, torch.nn.Linear(1, 1), {"name": "demo"})
    assert "not one of the configurations" in one_error_line(capsys, ["evaluate", str(demo)])
    # a checkpoint whose weights are of another architecture under the same name
    bad = save_checkpoint(tmp_path / "bad.pt", other, {"name": "seg-r18-tiny", "config": "seg-r18-tiny",
                                                      "binary": True})
    assert "does not fit network" in one_error_line(capsys, ["evaluate", str(bad)])
    binary = build_config("seg-r18-tiny").eval()
    with torch.no_grad():
        binary(torch.zeros(1, 3, 64, 64))
    ckpt = save_checkpoint(tmp_path / "binary.pt", binary, {"name": binary.name, "binary": True,
                                                            "config": "seg-r18-tiny"})
    assert "takes the trained full-precision twin" in one_error_line(
        capsys, ["train", *TINY, "--steps", "1", "--init-from", str(ckpt)])


def test_opcount_table_replaces_its_readme_section(tmp_path):
    from brevitas_models.errors import ModelError
    from brevitas_models.opcount_table import BEGIN, END, write

    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{BEGIN}\nold\n{END}\n\nafter\n")
    write(readme, ("seg-r18-tiny",))
    text = readme.read_text()
    assert "old" not in text and text.endswith(f"{END}\n\nafter\n")
    assert "**seg-r18-tiny** at 64x64" in text and "| total |" in text
    readme.write_text("no section")
    with pytest.raises(ModelError, match="no <!-- opcount-table:begin -->"):
        write(readme, ("seg-r18-tiny",))
