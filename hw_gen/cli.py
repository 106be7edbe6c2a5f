"""``hw-gen``: the command line of the generator."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from hw_gen.errors import HwGenError
from hw_gen.progress import step_bar

DESCRIPTION = """\
Turn binary neural networks for dense prediction (Brevitas QONNX exports) into FINN dataflow
accelerators, and check every step bit for bit."""


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
    p.add_argument("--clock-ns", type=float, default=10.0, help="target clock period (ns)")
    p.add_argument("--target-fps", type=float, default=None,
                   help="fold for this many frames/s (default: least parallelism)")
    p.add_argument("--folding-config", type=Path, default=None,
                   help="FINN folding-config JSON to apply instead of a target")
    p.add_argument("--stop-after", choices=STEP_NAMES, default=None,
                   help="stop after this step")
    p.add_argument("--resume", action="store_true",
                   help="continue from the last step saved in OUT/steps")
    p.add_argument("--verify", action="store_true",
                   help="then run the three-way check: every quantized activation, after every "
                   "step, in FINN's Python execution and in sim, against the QONNX model run by "
                   "qonnx's executor (torch's stand-in); prints a table, writes OUT/verify.json, "
                   "exits 1 on a mismatch")
    p.add_argument("--input", type=Path, default=None, metavar="X.npy",
                   help="input for --verify: what the torch model takes (float NCHW, pixels "
                   "k/255 for an 8-bit input); default one seeded random frame of 8-bit pixels")
    p.set_defaults(func=_run_lower)


def _run_lower(args: argparse.Namespace) -> int:
    from hw_gen.boards import get_board
    from hw_gen.finn_adapter import init_finn
    from hw_gen.lowering import lower
    from hw_gen.lowering.pipeline import STEP_NAMES

    if args.input is not None and not args.verify:
        raise HwGenError("--input is the input of --verify; add --verify")
    init_finn(args.out / "finn_build")
    get_board(args.board)
    if not args.model.exists():
        raise HwGenError(f"model file not found: {args.model}")
    x = None
    if args.input is not None:
        from hw_gen.lowering.pipeline import load_model
        from hw_gen.simrun import check_input, load_input

        x = load_input(args.input)
        check_input(load_model(args.model), x, str(args.input))
    with step_bar(len(STEP_NAMES), "lower") as progress:
        result = lower(
            args.model, args.out, board=args.board, outputs=args.outputs, clk_ns=args.clock_ns,
            target_fps=args.target_fps, folding_config=args.folding_config,
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
    return _verify(args, x) if args.verify else 0


def _verify(args: argparse.Namespace, x: np.ndarray | None) -> int:
    from hw_gen.lowering.pipeline import load_model, step_path
    from hw_gen.simrun import check_input, torch_input_shape
    from hw_gen.threeway import check_against_qonnx

    # the input interface's graph says whether the model takes 8-bit pixels
    graph = load_model(step_path(args.out, "input_interface"))
    if x is not None:
        check_input(graph, x, str(args.input))
    else:
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (1,) + torch_input_shape(graph)) / 255.0
    with step_bar(len(list(args.out.glob("steps/*.onnx"))), "verify") as progress:
        result = check_against_qonnx(args.out, x, progress=progress)
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
        "kept beside the graph (GRAPH.sim.json/.npz) and rewritten when older than the graph.",
    )
    p.add_argument("graph", type=Path, help="lowered graph (.onnx), e.g. OUT/dataflow.onnx")
    p.add_argument("--input", type=Path, required=True, metavar="X.npy", help="input array")
    p.add_argument("--output", type=Path, required=True, metavar="Y.npy", help="output array")
    p.add_argument("--labels", action="store_true",
                   help="write the labels output (the graph must have one) instead of the logits")
    p.set_defaults(func=_run_sim)


def _run_sim(args: argparse.Namespace) -> int:
    from hw_gen.simrun import load_input, run_graph

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
                   help="input (.npy, the float NCHW tensor the torch model takes) to run the "
                   "checks on; default: a seeded random input")
    p.add_argument("--outputs", choices=("labels", "logits", "both"), default="both")
    p.add_argument("--clock-ns", type=float, default=None,
                   help="target clock period (ns); default: the board's default clock")
    p.add_argument("--clock-mhz", type=float, default=None,
                   help="target clock (MHz), instead of --clock-ns; a Zynq shell runs it in "
                   "whole MHz, and every figure uses that clock")
    p.add_argument("--target-fps", type=float, default=None,
                   help="fold every layer for this frame rate on the board, with the memory "
                   "options that minimise the largest utilisation; if the board cannot hold it, "
                   "the best rate that fits (one warning naming the limiting resource and layer)")
    p.add_argument("--strict-fps", action="store_true",
                   help="make a --target-fps the board cannot hold an error")
    p.add_argument("--fit", type=float, default=0.8,
                   help="largest fraction of each board resource a folding may use (default "
                   "%(default)g)")
    p.add_argument("--folding", "--folding-config", dest="folding_config", type=Path,
                   default=None, metavar="FILE",
                   help="FINN folding-config JSON (node name -> PE, SIMD, memory options, FIFO "
                   "depths); every build writes its own as OUT/report/folding.json")
    p.add_argument("--stop-after", choices=BUILD_STEPS, default=None, help="stop after this step")
    p.add_argument("--resume", action="store_true",
                   help="reuse the lowering steps saved in OUT/steps")
    p.set_defaults(func=_run_build)


def _run_build(args: argparse.Namespace) -> int:
    from hw_gen.build import BUILD_STEPS, build
    from hw_gen.finn_adapter import init_finn

    init_finn(args.out / "finn_build")
    if not args.model.exists():
        raise HwGenError(f"model file not found: {args.model}")
    with step_bar(len(BUILD_STEPS), "build") as progress:
        result = build(
            args.model, args.out, board=args.board, clk_ns=args.clock_ns,
            target_fps=args.target_fps, folding_config=args.folding_config,
            outputs=args.outputs, input_npy=args.input, stop_after=args.stop_after,
            resume=args.resume, progress=progress, clock_mhz=args.clock_mhz, fit=args.fit,
            strict_fps=args.strict_fps,
        )
    lowered = result.step("lower")
    warning = lowered.extra.get("facts", {}).get("fold_warning") if lowered else None
    if warning:
        print(f"hw-gen: {warning}", file=sys.stderr)
    print(result.summary())
    print(f"wrote {args.out / 'verification.json'}")
    return 0 if result.passed else 1


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
    parser = argparse.ArgumentParser(prog="hw-gen", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_lower(sub)
    _add_build(sub)
    _add_sim(sub)
    _add_report(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except HwGenError as exc:
        print(f"hw-gen: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
