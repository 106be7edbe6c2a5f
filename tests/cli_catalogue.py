"""The catalogue of bad command lines (tests/test_cli_catalogue.py): each case is an argv
with placeholders filled from the files :func:`make_files` writes, and the words its one-line
error must contain. :func:`classify` runs a case in-process and says how it ended."""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# A tiny network: 8-bit pixels in, two binary convs, a 1x1 classifier (4 labels).
SHAPE = (1, 3, 8, 8)


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    names: tuple[str, ...]  # words the error line must contain
    lowers: bool = False  # fails only after lowering (node names of a folding config)


def _c(id_, argv, *names, lowers=False):
    return Case(id_, tuple(argv.split()), tuple(names), lowers)


B = "build {model} -o {out}"
L = "lower {model} -o {out}"
S = "sim {graph} --input {x} --output {y}"

CASES = [
    # models
    _c("model_missing", "build {dir}/none.onnx -o {out}", "model file not found", "none.onnx"),
    _c("model_is_folder", "build {dir} -o {out}", "not a file"),
    _c("model_empty", "build {empty} -o {out}", "empty"),
    _c("model_text", "build {text} -o {out}", "not a readable ONNX model"),
    _c("model_npy", "build {x} -o {out}", "not a readable ONNX model"),
    _c("model_truncated", "build {truncated} -o {out}", "not a readable ONNX model"),
    _c("model_bits_0", "build {bits_0} -o {out}", "Quant", "bit width 0"),
    _c("model_bits_40", "build {bits_40} -o {out}", "Quant", "bit width 40"),
    _c("model_bits_2_5", "build {bits_2_5} -o {out}", "Quant", "bit width 2.5"),
    _c("model_bits_1", "build {bits_1} -o {out}", "Quant", "bit width 1"),
    _c("model_bits_nan", "build {bits_nan} -o {out}", "Quant", "bit width nan"),
    _c("model_bits_negative", "build {bits_-3} -o {out}", "Quant", "bit width -3"),
    _c("model_two_inputs", "build {two_inputs} -o {out}", "2 inputs"),
    _c("lower_model_missing", "lower {dir}/none.onnx -o {out}", "model file not found"),
    _c("lower_model_bits_0", "lower {bits_0} -o {out}", "Quant", "bit width 0"),
    _c("lower_model_text", "lower {text} -o {out}", "not a readable ONNX model"),
    # inputs of build and lower (checked as sim checks them)
    _c("input_missing", B + " --input {dir}/none.npy", "input file not found"),
    _c("input_folder", B + " --input {dir}", "not a .npy array"),
    _c("input_npz", B + " --input {npz}", "not a .npy array"),
    _c("input_text", B + " --input {text}", "not a .npy array"),
    _c("input_shape", B + " --input {x_shape}", "shape (1, 3, 9, 9)", "(N, 3, 8, 8)"),
    _c("input_rank", B + " --input {x_rank}", "shape (3, 8, 8)"),
    _c("input_not_pixels", B + " --input {x_half}", "8-bit pixels"),
    _c("input_above_1", B + " --input {x_2}", "8-bit pixels"),
    _c("input_negative", B + " --input {x_neg}", "8-bit pixels"),
    _c("input_nan", B + " --input {x_nan}", "NaN"),
    _c("input_empty_batch", B + " --input {x_empty}", "empty batch"),
    _c("input_bool", B + " --input {x_bool}", "not numeric"),
    _c("input_pickled", B + " --input {x_object}", "not a .npy array"),
    _c("input_complex", B + " --input {x_complex}", "not numeric"),
    _c("input_strings", B + " --input {x_str}", "not numeric"),
    _c("lower_input_shape", L + " --input {x_shape}", "shape (1, 3, 9, 9)"),
    _c("lower_input_not_pixels", L + " --input {x_half}", "8-bit pixels"),
    _c("lower_input_empty_batch", L + " --input {x_empty}", "empty batch"),
    # sim
    _c("sim_graph_missing", "sim {dir}/none.onnx --input {x} --output {y}", "graph file not found"),
    _c("sim_graph_text", "sim {text} --input {x} --output {y}", "not a readable ONNX model"),
    _c("sim_input_shape", "sim {graph} --input {x_shape} --output {y}", "shape (1, 3, 9, 9)"),
    _c("sim_input_not_pixels", "sim {graph} --input {x_half} --output {y}", "8-bit pixels"),
    _c("sim_input_empty_batch", "sim {graph} --input {x_empty} --output {y}", "empty batch"),
    _c("sim_input_npz", "sim {graph} --input {npz} --output {y}", "not a .npy array"),
    _c("sim_output_folder", "sim {graph} --input {x} --output {dir}", "--output", "is a folder"),
    _c("sim_output_no_folder", "sim {graph} --input {x} --output {dir}/no/y.npy", "--output",
       "does not exist"),
    _c("sim_no_output", "sim {graph} --input {x}", "--output"),
    # options
    _c("clock_zero", B + " --clock-ns 0", "--clock-ns", "above 0"),
    _c("clock_negative", B + " --clock-ns -10", "--clock-ns", "above 0"),
    _c("clock_nan", B + " --clock-ns nan", "--clock-ns", "above 0"),
    _c("clock_inf", B + " --clock-ns inf", "--clock-ns", "above 0"),
    _c("clock_word", B + " --clock-ns fast", "--clock-ns", "fast"),
    _c("fps_zero", B + " --target-fps 0", "--target-fps", "above 0"),
    _c("fps_negative", B + " --target-fps -5", "--target-fps", "above 0"),
    _c("fps_inf", B + " --target-fps inf", "--target-fps", "above 0"),
    _c("lower_clock_zero", L + " --clock-ns 0", "--clock-ns", "above 0"),
    _c("lower_fps_nan", L + " --target-fps nan", "--target-fps", "above 0"),
    _c("board_unknown", B + " --board Pynq-Z9", "--board", "Pynq-Z9"),
    _c("board_empty", "build {model} -o {out} --board=", "--board"),
    _c("stop_after_unknown", B + " --stop-after everything", "--stop-after", "everything"),
    _c("outputs_unknown", B + " --outputs scores", "--outputs", "scores"),
    _c("option_unknown", B + " --frobnicate", "--frobnicate"),
    _c("out_missing", "build {model}", "-o/--out"),
    _c("model_argument_missing", "build -o {out}", "model"),
    _c("command_unknown", "synthesize {model}", "synthesize"),
    _c("folding_and_fps", B + " --folding {fold_ok} --target-fps 100", "--folding",
       "--target-fps"),
    # folding configs (form: checked before anything runs)
    _c("folding_missing", B + " --folding-config {dir}/none.json", "--folding", "not found"),
    _c("folding_folder", B + " --folding-config {dir}", "--folding", "not a file"),
    _c("folding_not_json", B + " --folding-config {text}", "--folding", "not valid JSON"),
    _c("folding_list", B + " --folding-config {fold_list}", "--folding", "not a list"),
    _c("folding_string", B + " --folding {fold_string}", "--folding", "not a str"),
    _c("folding_empty", B + " --folding {fold_empty}", "--folding", "empty"),
    _c("folding_entry_number", B + " --folding {fold_entry_number}", "MVAU_hls_0",
       "must be an object"),
    _c("folding_defaults_scalar", B + " --folding {fold_defaults_scalar}", "Defaults", "PE"),
    _c("folding_defaults_ops", B + " --folding {fold_defaults_ops}", "Defaults", "op types"),
    _c("folding_value_bool", B + " --folding {fold_bool}", "MVAU_hls_0", "PE", "true"),
    _c("folding_value_null", B + " --folding {fold_null}", "MVAU_hls_0", "PE", "null"),
    _c("folding_binary_file", B + " --folding {x}", "--folding", "not a text file"),
    # folding configs against the lowered graph
    _c("folding_unknown_node", B + " --folding {fold_unknown_node}", "MVAU_9",
       "not in the lowered graph", lowers=True),
    _c("folding_pe_zero", B + " --folding {fold_pe_zero}", "MVAU_hls_0", "PE", "positive",
       lowers=True),
    _c("folding_pe_negative", L + " --folding {fold_pe_negative}", "MVAU_hls_0", "PE",
       lowers=True),
    _c("folding_pe_not_dividing", B + " --folding {fold_pe_3}", "MVAU_hls_0", "PE = 3",
       lowers=True),
    _c("folding_simd_string", B + " --folding {fold_simd_string}", "MVAU_hls_0", "SIMD",
       lowers=True),
    _c("folding_unknown_attribute", B + " --folding {fold_unknown_attr}", "MVAU_hls_0",
       "TURBO", "no such attribute", lowers=True),
    _c("folding_bad_ram_style", B + " --folding {fold_ram_style}", "MVAU_hls_0", "ram_style",
       "warp", lowers=True),
    _c("folding_parallel_window", B + " --folding {fold_parallel_window}",
       "ConvolutionInputGenerator_rtl_1", "parallel_window", "SIMD", lowers=True),
    _c("folding_software_node", B + " --folding {fold_software}", "Transpose_0",
       "not a hardware layer", lowers=True),
    _c("folding_defaults_not_dividing", B + " --folding {fold_defaults_pe}", "Defaults",
       "PE = 3", lowers=True),
    # output folders
    _c("out_is_file", "build {model} -o {text}", "-o", "not a folder"),
    _c("out_under_file", "build {model} -o {text}/sub", "-o", "is a file"),
    _c("lower_out_is_file", "lower {model} -o {text}", "-o", "not a folder"),
    _c("lower_out_under_file", "lower {model} -o {text}/sub/deeper", "-o", "is a file"),
    # resumes that cannot go on
    _c("resume_out_is_file", "build {model} -o {text} --resume", "-o", "not a folder"),
    _c("resume_stop_before_done", "lower {model} -o {lowered} --resume --stop-after tidy",
       "cannot resume", "tidy"),
]


def _folding(dirpath: Path) -> dict[str, object]:
    return {
        "fold_ok": {"MVAU_hls_0": {"PE": 2}},
        "fold_list": [{"MVAU_hls_0": {"PE": 2}}],
        "fold_string": "PE=2",
        "fold_empty": {},
        "fold_entry_number": {"MVAU_hls_0": 2},
        "fold_defaults_scalar": {"Defaults": {"PE": 2}},
        "fold_defaults_ops": {"Defaults": {"PE": [2, 5]}},
        "fold_bool": {"MVAU_hls_0": {"PE": True}},
        "fold_null": {"MVAU_hls_0": {"PE": None}},
        "fold_unknown_node": {"MVAU_9": {"PE": 2}},
        "fold_pe_zero": {"MVAU_hls_0": {"PE": 0}},
        "fold_pe_negative": {"MVAU_hls_0": {"PE": -2}},
        "fold_pe_3": {"MVAU_hls_0": {"PE": 3}},
        "fold_simd_string": {"MVAU_hls_0": {"SIMD": "9"}},
        "fold_unknown_attr": {"MVAU_hls_0": {"TURBO": 1}},
        "fold_ram_style": {"MVAU_hls_0": {"ram_style": "warp"}},
        "fold_parallel_window": {"ConvolutionInputGenerator_rtl_1": {"parallel_window": 1,
                                                                      "SIMD": 2}},
        "fold_software": {"Transpose_0": {"PE": 2}},
        "fold_defaults_pe": {"Defaults": {"PE": [3, ["MVAU_hls"]]}},
    }


def make_files(dirpath: Path, model: Path, graph: Path, lowered: Path) -> dict[str, str]:
    """Write every file the cases name; returns the placeholder values."""
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper

    files: dict[str, str] = {"dir": str(dirpath), "model": str(model), "graph": str(graph),
                             "lowered": str(lowered), "out": str(dirpath / "out"),
                             "y": str(dirpath / "y.npy")}

    def put(name: str, path: Path) -> None:
        files[name] = str(path)

    (dirpath / "empty.onnx").write_bytes(b"")
    put("empty", dirpath / "empty.onnx")
    (dirpath / "notes.txt").write_text("not a model\n")
    put("text", dirpath / "notes.txt")
    data = model.read_bytes()
    (dirpath / "truncated.onnx").write_bytes(data[: len(data) // 2])
    put("truncated", dirpath / "truncated.onnx")
    for bits in ("0", "40", "2_5", "1", "nan", "-3"):
        m = ModelWrapper(str(model))
        quant = next(n for n in m.graph.node if n.op_type == "Quant"
                     and m.get_initializer(n.input[0]) is None)
        value = float(bits.replace("_", "."))
        m.set_initializer(quant.input[3], np.asarray(value, dtype=np.float32))
        m.save(str(dirpath / f"bits_{bits}.onnx"))
        put(f"bits_{bits}", dirpath / f"bits_{bits}.onnx")
    m = onnx.load(str(model))
    extra = onnx.helper.make_tensor_value_info("second", onnx.TensorProto.FLOAT, [1, 3, 8, 8])
    m.graph.input.append(extra)
    onnx.save(m, str(dirpath / "two_inputs.onnx"))
    put("two_inputs", dirpath / "two_inputs.onnx")

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, SHAPE) / 255.0
    arrays = {
        "x": pixels, "x_shape": np.zeros((1, 3, 9, 9)), "x_rank": np.zeros((3, 8, 8)),
        "x_half": pixels + 0.5 / 255, "x_2": pixels * 2 + 1 / 255, "x_neg": -pixels - 1 / 255,
        "x_nan": np.full(SHAPE, np.nan), "x_empty": np.zeros((0, 3, 8, 8)),
        "x_bool": np.ones(SHAPE, dtype=bool), "x_complex": pixels.astype(np.complex64),
        "x_str": np.full(SHAPE, "a"),
    }
    for name, array in arrays.items():
        np.save(dirpath / f"{name}.npy", array)
        put(name, dirpath / f"{name}.npy")
    np.save(dirpath / "x_object.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    put("x_object", dirpath / "x_object.npy")
    np.savez(dirpath / "x.npz", x=pixels)
    put("npz", dirpath / "x.npz")
    for name, config in _folding(dirpath).items():
        (dirpath / f"{name}.json").write_text(json.dumps(config))
        put(name, dirpath / f"{name}.json")
    return files


def argv_of(case: Case, files: dict[str, str], out: Path) -> list[str]:
    values = dict(files, out=str(out))
    return [a.format(**values) for a in case.argv]


@dataclass
class Outcome:
    kind: str  # "clear", "traceback", "silent", "unclear"
    code: int | None
    err: str


def classify(main, argv: list[str], capsys) -> Outcome:
    """Run ``main(argv)``: "clear" is exit code 2 with one line ``hw-gen: error: ...`` on
    stderr; "traceback" an exception that escaped (or a traceback printed); "silent" exit 0;
    anything else "unclear"."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        captured = capsys.readouterr()
        return Outcome("traceback", None, captured.err + traceback.format_exc())
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and not _progress_line(ln)]
    if "Traceback (most recent call last)" in err:
        return Outcome("traceback", code, err)
    if code == 0:
        return Outcome("silent", code, err)
    if code == 2 and len(lines) == 1 and lines[0].startswith("hw-gen: error: "):
        return Outcome("clear", code, lines[0])
    return Outcome("unclear", code, err)


def _progress_line(line: str) -> bool:
    return line.startswith("hw-gen: --resume") or "|" in line and "step" in line
