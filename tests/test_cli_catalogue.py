"""The catalogue of bad command lines (tests/cli_catalogue.py): every case ends with exit code
2 and one line ``hw-gen: error: ...`` naming the cause, no traceback, and nothing written that
a later run would trust. And what --resume does with a folder from other inputs."""

import shlex

import numpy as np
import pytest
from brevitas.export import export_qonnx

from cli_catalogue import CASES, SHAPE, argv_of, classify, make_files
from hw_gen.vendor.flow import resume_command
from hw_gen.cli import main
from hw_gen.lowering import lower
from lowering_nets import PaddedNet, pixels, randomize_bn

TRUSTED = ("verification.json", "verify.json", "dataflow.onnx", "layers.json")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("catalogue")
    model = folder / "model.onnx"
    export_qonnx(randomize_bn(PaddedNet("minus1"), seed=1), pixels(SHAPE), str(model),
                 dynamo=False)
    lowered = folder / "lowered"
    lower(model, lowered)
    return make_files(folder, model, lowered / "dataflow.onnx", lowered)


def test_the_catalogue_is_large_enough():
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_one_clear_line(case, files, tmp_path, capsys):
    out = tmp_path / "out"
    argv = argv_of(case, files, out)
    outcome = classify(main, argv, capsys)
    assert outcome.kind == "clear", f"{argv}: {outcome.kind} (exit {outcome.code}): {outcome.err}"
    for word in case.names:
        assert word in outcome.err, (word, outcome.err)
    for name in TRUSTED:
        assert not (out / name).exists(), name


def test_resume_from_another_model_starts_over(files, tmp_path, capsys):
    out = tmp_path / "out"
    other = tmp_path / "other.onnx"
    export_qonnx(randomize_bn(PaddedNet("minus1"), seed=7), pixels(SHAPE), str(other),
                 dynamo=False)
    assert main(["lower", files["model"], "-o", str(out), "--stop-after", "tidy"]) == 0
    capsys.readouterr()
    assert main(["lower", str(other), "-o", str(out), "--resume"]) == 0
    err = capsys.readouterr().err
    assert "--resume" in err and "model differs" in err and "starting over" in err
    fresh = tmp_path / "fresh"
    assert main(["lower", str(other), "-o", str(fresh)]) == 0
    assert (out / "layers.txt").read_text() == (fresh / "layers.txt").read_text()
    from hw_gen.simrun import run_graph

    x = np.load(files["x"])
    assert np.array_equal(run_graph(out / "dataflow.onnx", x, labels=True),
                          run_graph(fresh / "dataflow.onnx", x, labels=True))


def test_resume_with_another_clock_or_folding_starts_over(files, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["lower", files["model"], "-o", str(out), "--stop-after", "widths"]) == 0
    capsys.readouterr()
    assert main(["lower", files["model"], "-o", str(out), "--resume", "--stop-after",
                 "specialize"]) == 0
    assert "starting over" not in capsys.readouterr().err  # same inputs: it resumes
    assert main(["lower", files["model"], "-o", str(out), "--resume", "--clock-ns", "5"]) == 0
    assert "clock_ns differs" in capsys.readouterr().err
    assert main(["lower", files["model"], "-o", str(out), "--resume", "--folding",
                 files["fold_ok"]]) == 0
    assert "folding differs" in capsys.readouterr().err


def test_board_names_ignore_case_and_take_short_names(files, tmp_path):
    from hw_gen.boards import get_board

    assert get_board("pynq-z1").name == "Pynq-Z1"
    assert get_board("ZCU104").name == get_board("zcu104").name == "ZCU104"
    assert get_board("kv260").name == "KV260_SOM"
    assert get_board("ultra96v2").name == "Ultra96-V2"
    assert get_board("ultra96").name == "Ultra96"
    assert main(["build", files["model"], "-o", str(tmp_path / "o"), "--board", "pynq-z1",
                 "--stop-after", "lower"]) == 0


def test_printed_resume_command_is_shell_quoted(tmp_path):
    model = tmp_path / "my model's.onnx"
    command = resume_command(model, "Pynq-Z2", tmp_path / "out dir", 10.0)
    assert shlex.split(command)[2] == str(model)
    assert shlex.split(command)[-2] == str(tmp_path / "out dir")


def test_a_folding_config_that_fits_is_applied(files, tmp_path):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    out = tmp_path / "out"
    assert main(["lower", files["model"], "-o", str(out), "--folding-config",
                 files["fold_ok"]]) == 0
    graph = ModelWrapper(str(out / "dataflow.onnx"))
    assert getCustomOp(graph.get_node_from_name("MVAU_hls_0")).get_nodeattr("PE") == 2
    x = np.load(files["x"])
    assert x.shape == SHAPE
