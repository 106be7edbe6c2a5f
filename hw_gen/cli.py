"""``hw-gen``: the command line of the generator."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from hw_gen.cli_checks import check_flow_options, load_torch_model, positive_number
from hw_gen.errors import HwGenError
from hw_gen.progress import step_bar

DESCRIPTION = """\
Turn binary neural networks for dense prediction (Brevitas QONNX exports) into FINN dataflow
accelerators, and check every step bit for bit."""

EPILOG = """\
exit codes: 0 done (every check passed), 1 a check against the model failed (see
OUT/verification.json), 2 bad input or usage (one line names the file, node, attribute or
option at fault), 3 an internal error (rerun with --debug for the traceback)."""


def _add_lower(sub: argparse._SubParsersAction) -> None:
    from hw_gen.boards import DEFAULT_BOARD
    from hw_gen.lowering.pipeline import STEP_NAMES

    p = sub.add_parser(
        "lower",
        help="lower a QONNX model to FINN hardware layers",
        description="Lower a Brevitas QONNX export to a graph of FINN hardware layers: QONNX "
        "to FINN, tidy-up, streamlining, our exactness fix-ups, conversion to hardware layers, "
        "bit widths, specialization and folding. Writes OUT/dataflow.onnx (the whole lowered "
        "graph in one file), OUT/steps/NN_<step>.onnx after every step, and a per-layer table "
        "(OUT/layers.txt, OUT/layers.json).",
    )
    p.add_argument("model", type=Path, help="QONNX model (.onnx) exported from Brevitas")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--board", default=DEFAULT_BOARD,
                   help=f"board name from FINN's part map (default {DEFAULT_BOARD}); "
                   "an unknown name lists the known ones")
    p.add_argument("--outputs", choices=("labels", "logits", "both"), default="both",
                   help="graph outputs: per-pixel labels, float logits, or both (default)")
    p.add_argument("--clock-ns", type=positive_number("--clock-ns"), default=10.0,
                   help="target clock period (ns)")
    p.add_argument("--target-fps", type=positive_number("--target-fps"), default=None,
                   help="fold for this many frames/s (default: least parallelism)")
    p.add_argument("--folding", "--folding-config", dest="folding", type=Path, default=None,
                   help="FINN folding-config JSON to apply instead of a target: node name -> "
                   "{attribute: value}, plus FINN's optional \"Defaults\" entry; checked "
                   "against the lowered graph before it is applied")
    p.add_argument("--stop-after", choices=STEP_NAMES, default=None,
                   help="stop after this step")
    p.add_argument("--resume", action="store_true",
                   help="continue from the last step saved in OUT/steps")
    p.add_argument("--verify", action="store_true", help=argparse.SUPPRESS)  # always on now
    p.add_argument("--input", type=Path, default=None, metavar="X.npy",
                   help="input of the check against the model (every lowering is checked: "
                   "every quantized activation, after every step, in FINN's Python execution "
                   "and in sim, against the exported QONNX model run by qonnx's executor; a "
                   "table, OUT/verify.json, exit code 1 on a mismatch): what the torch model "
                   "takes (float NCHW, pixels k/255 for an 8-bit input); default one seeded "
                   "frame of what the model takes")
    p.set_defaults(func=_run_lower)


def _run_lower(args: argparse.Namespace) -> int:
    from hw_gen.boards import get_board
    from hw_gen.build import build_input
    from hw_gen.finn_adapter import init_finn
    from hw_gen.lowering import lower
    from hw_gen.lowering.pipeline import STEP_NAMES

    check_flow_options(args)
    x, _ = build_input(args.model, args.input)
    init_finn(args.out / "finn_build")
    get_board(args.board)
    with step_bar(len(STEP_NAMES), "lower") as progress:
        result = lower(
            args.model, args.out, board=args.board, outputs=args.outputs, clk_ns=args.clock_ns,
            target_fps=args.target_fps, folding_config=args.folding,
            stop_after=args.stop_after, resume=args.resume, progress=progress,
        )
    if not result.complete:
        print(f"stopped after step '{result.run.last_step}'; intermediates in {args.out}/steps")
    else:
        print(result.table())
        t = result.throughput()
        print(f"\nslowest layer {t['slowest_layer']}: {t['cycles_per_frame']} cycles/frame, "
              f"{t['frames_per_second']:.1f} frames/s at {args.clock_ns:g} ns")
        print(f"wrote {result.dataflow_path}")
    return _verify(args, x)


def _verify(args: argparse.Namespace, x: np.ndarray) -> int:
    from hw_gen.threeway import check_against_qonnx

    with step_bar(len(list(args.out.glob("steps/*.onnx"))), "verify") as progress:
        result = check_against_qonnx(args.out, x, exported=args.model, progress=progress)
    print(result.summary())
    path = result.write_json(args.out / "verify.json")
    print(f"wrote {path}")
    return 0 if result.passed else 1


def _add_sim(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sim",
        help="run a lowered graph in the bit-exact simulator",
        description="Run a lowered graph (OUT/dataflow.onnx of 'hw-gen lower') in sim, the "
        "numpy simulator, on the input the torch model takes (float NCHW; an 8-bit input as "
        "pixels k/255) and write what the torch model returns: the float logits in its layout, "
        "or with --labels the label of each pixel (N, H, W) as int64. The simulator's bundle is "
        "kept beside the graph (GRAPH.sim.json/.npz) with the graph's content hash, and "
        "rewritten when the graph or the bundle changed.",
    )
    p.add_argument("graph", type=Path, help="lowered graph (.onnx), e.g. OUT/dataflow.onnx")
    p.add_argument("--input", type=Path, required=True, metavar="X.npy", help="input array")
    p.add_argument("--output", type=Path, required=True, metavar="Y.npy", help="output array")
    p.add_argument("--labels", action="store_true",
                   help="write the labels output (the graph must have one) instead of the logits")
    p.set_defaults(func=_run_sim)


def _run_sim(args: argparse.Namespace) -> int:
    from hw_gen.cli_checks import check_output_file
    from hw_gen.simrun import load_input, run_graph

    check_output_file(args.output, "--output")
    x = load_input(args.input)
    y = run_graph(args.graph, x, labels=args.labels, progress=True, what=str(args.input))
    np.save(args.output, y)
    what = "labels" if args.labels else "logits"
    print(f"wrote {args.output}: {what} {y.dtype} {tuple(y.shape)}")
    return 0


def _add_build(sub: argparse._SubParsersAction) -> None:
    from hw_gen.boards import DEFAULT_BOARD
    from hw_gen.build import BUILD_STEPS

    p = sub.add_parser(
        "build",
        help="lower, verify and generate the accelerator's sources",
        description="Lower the model (as `hw-gen lower`), run the lowered graph in sim, "
        "C-simulate our own layers' generated HLS with g++ against their sim kernels, run "
        "FINN's code generation into OUT/ip/, and the vendor steps where the tools are on PATH. "
        "OUT/verification.json records every step as pass, fail or skipped; a pass names the "
        "two implementations compared and how many integers were compared.",
    )
    p.add_argument("model", type=Path, help="QONNX model (.onnx) exported from Brevitas")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--board", default=DEFAULT_BOARD, help="board name from FINN's part map")
    p.add_argument("--input", type=Path, default=None,
                   help="input (.npy, the float NCHW tensor the torch model takes; pixels "
                   "k/255 for an 8-bit input, checked as `hw-gen sim` checks it) to run the "
                   "checks on; default: one seeded frame of what the model takes")
    p.add_argument("--outputs", choices=("labels", "logits", "both"), default="both")
    p.add_argument("--clock-ns", type=positive_number("--clock-ns"), default=None,
                   help="target clock period (ns); default: the board's default clock")
    p.add_argument("--clock-mhz", type=positive_number("--clock-mhz"), default=None,
                   help="target clock (MHz), instead of --clock-ns; a Zynq shell runs it in "
                   "whole MHz, and every figure uses that clock")
    p.add_argument("--target-fps", type=positive_number("--target-fps"), default=None,
                   help="fold every layer for this frame rate on the board, with the memory "
                   "options that minimise the largest utilisation; if the board cannot hold it, "
                   "the best rate that fits (one warning naming the limiting resource and layer)")
    p.add_argument("--strict-fps", action="store_true",
                   help="make a --target-fps the board cannot hold an error")
    p.add_argument("--fit", type=positive_number("--fit"), default=0.8,
                   help="largest fraction of each board resource a folding may use (default "
                   "%(default)g)")
    p.add_argument("--folding", "--folding-config", dest="folding", type=Path, default=None,
                   metavar="FILE",
                   help="FINN folding-config JSON (node name -> PE, SIMD, memory options, FIFO "
                   "depths); every build writes its own as OUT/report/folding.json")
    p.add_argument("--torch", type=Path, default=None, metavar="CHECKPOINT.pt",
                   help="the brevitas_models checkpoint the model was exported from: torch's "
                   "quantized tensors (through the network's own modules) become the reference "
                   "of the threeway step instead of the exported QONNX model")
    p.add_argument("--stop-after", choices=BUILD_STEPS, default=None, help="stop after this step")
    p.add_argument("--resume", action="store_true",
                   help="reuse the lowering steps saved in OUT/steps")
    p.set_defaults(func=_run_build)


def _run_build(args: argparse.Namespace) -> int:
    from hw_gen.build import BUILD_STEPS, build, build_input
    from hw_gen.finn_adapter import init_finn

    check_flow_options(args)
    build_input(args.model, args.input)  # checked before the slow work
    torch_model = None if args.torch is None else load_torch_model(args.torch)
    init_finn(args.out / "finn_build")
    with step_bar(len(BUILD_STEPS), "build") as progress:
        result = build(
            args.model, args.out, board=args.board, clk_ns=args.clock_ns,
            target_fps=args.target_fps, folding_config=args.folding,
            outputs=args.outputs, input_npy=args.input, stop_after=args.stop_after,
            resume=args.resume, progress=progress, clock_mhz=args.clock_mhz, fit=args.fit,
            strict_fps=args.strict_fps, torch_model=torch_model,
        )
    lowered = result.step("lower")
    warning = lowered.extra.get("facts", {}).get("fold_warning") if lowered else None
    if warning:
        print(f"hw-gen: {warning}", file=sys.stderr)
    print(result.summary())
    print(f"wrote {args.out / 'verification.json'}")
    return 0 if result.passed else 1


def _add_deploy(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "deploy",
        help="make the folder to copy to the board",
        description="Write the deploy package of a build: the driver (python -m driver), sim/ "
        "for its simulated backend, the I/O description (io.json: shapes, data types, folded "
        "and packed shapes, input quantization), the accelerator as a sim bundle, the "
        "bitstream when one was built for this model (bitstreams/<name>/, or --bitstream), "
        "the report when there is one, the demo notebook and sample images.",
    )
    p.add_argument("build", type=Path, help="build folder (hw-gen build ... -o OUT)")
    p.add_argument("-o", "--out", type=Path, required=True, help="package folder (replaced)")
    p.add_argument("--bitstream", type=Path, default=None,
                   help="bitstream folder with manifest.json (default: the one in bitstreams/ "
                   "built from the same model, if any)")
    p.set_defaults(func=_run_deploy)


def _run_deploy(args: argparse.Namespace) -> int:
    from hw_gen.deploy.package import make_package
    from hw_gen.finn_adapter import init_finn

    init_finn(args.build / "finn_build")
    dest = make_package(args.build, args.out, args.bitstream)
    has_bit = (dest / "bitstream").is_dir()
    print(f"wrote {dest} ({'with' if has_bit else 'without'} a bitstream); "
          f"try: python -m driver {dest} --input X.npy --output Y.npy --backend sim")
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, ``hw-gen: error: ...``, exit code 2."""

    def error(self, message: str):
        self.exit(2, f"hw-gen: error: {self.prog.removeprefix('hw-gen ')}: {message}\n"
                  if self.prog != "hw-gen" else f"hw-gen: error: {message}\n")


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="rewrite a build's HTML report and print its summary",
        description="Rewrite OUT/report/report.html (per-layer cycles and resources, board "
        "utilisation, FIFO depths, the verification table; one self-contained page) from the "
        "JSON a build wrote, and print a summary of the estimate.",
    )
    p.add_argument("out", type=Path, help="the build's output folder")
    p.set_defaults(func=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from hw_gen.reporting import terminal_summary, write_report

    path = write_report(args.out)
    print(terminal_summary(args.out))
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hw-gen", description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_lower(sub)
    _add_build(sub)
    _add_sim(sub)
    _add_report(sub)
    _add_deploy(sub)
    for command in sub.choices.values():
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show the Python traceback of an error")
    return parser


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except HwGenError as exc:
        if args.debug:
            raise
        print(f"hw-gen: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hw-gen: error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a defect of ours or of a library: one line, --debug for more
        if args.debug:
            raise
        print(f"hw-gen: error: internal error, {type(exc).__name__}: {_one_line(exc)[:300]} "
              "(rerun with --debug for the traceback)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
