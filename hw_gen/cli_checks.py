"""The command line's checks of its arguments, made before any slow work: each problem is
one :class:`HwGenError` naming the option, file or value at fault."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from hw_gen.errors import HwGenError


def positive_number(option: str):
    """An argparse type: a finite number above zero."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"{option} must be a finite number above 0, "
                                             f"not {text}")
        return value

    parse.__name__ = "number"
    return parse


def check_model_file(path: Path) -> None:
    if not path.exists():
        raise HwGenError(f"model file not found: {path}")
    if not path.is_file():
        raise HwGenError(f"model {path}: not a file")
    if path.stat().st_size == 0:
        raise HwGenError(f"model {path}: the file is empty")


def check_out_folder(out: Path) -> None:
    """``-o``: a folder, or a path where one can be made."""
    if out.exists() and not out.is_dir():
        raise HwGenError(f"-o {out}: exists and is not a folder")
    parent = next((p for p in [out, *out.parents] if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise HwGenError(f"-o {out}: {parent} is a file, not a folder")
    if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
        raise HwGenError(f"-o {out}: {parent} is not writable")


def check_output_file(path: Path, option: str) -> None:
    """An output array's path: not a folder, in a folder that exists."""
    if path.is_dir():
        raise HwGenError(f"{option} {path}: is a folder; give a file name (.npy)")
    if not path.parent.exists() or not path.parent.is_dir():
        raise HwGenError(f"{option} {path}: folder {path.parent} does not exist")
    if path.suffix != ".npy":
        raise HwGenError(f"{option} {path}: the output is written as .npy; name it so")


def check_flow_options(args: argparse.Namespace) -> None:
    """What ``lower`` and ``build`` share: model, folder, board, folding, input."""
    from hw_gen.boards import get_board
    from hw_gen.folding_config import read_folding_config

    check_model_file(args.model)
    check_out_folder(args.out)
    args.board = get_board(args.board).name
    if args.folding is not None:
        if args.target_fps is not None:
            raise HwGenError("--folding and --target-fps exclude each other: a folding config "
                             "sets the parallelism the target would choose")
        read_folding_config(args.folding)


def load_torch_model(path: Path):
    """``--torch``: the network of a brevitas_models checkpoint, in eval mode."""
    from brevitas_models.errors import ModelError
    from brevitas_models.train import load_model

    try:
        model, _ = load_model(path)
    except ModelError as exc:
        raise HwGenError(f"--torch: {exc}") from None
    return model
