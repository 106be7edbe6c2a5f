"""One graph tensor against the reference integers of the activation it carries."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qonnx.core.datatype import DataType

from hw_gen.errors import HwGenError
from hw_gen.threeway.reference import Activation, to_integers


@dataclass
class Decoded:
    """A graph tensor turned into torch's integers (or why it could not be), and how."""

    values: np.ndarray | None
    how: str
    error: str | None = None


def decode(
    values: np.ndarray, activation: Activation, tag: dict, dtype: DataType
) -> Decoded:
    """Graph tensor -> the activation's integers in torch layout.

    Layout: ``np.transpose(values, tag["perm"])``. Encoding by the tensor's declared
    DataType: BINARY holding a bipolar activation is XNOR encoded (``q = 2b - 1``); any other
    integer type holds ``q``; a float type holds ``tag["scale"] * q`` (or the activation's
    value, ``scale * q``, before the conversion to thresholds).
    """
    v = np.asarray(values)
    perm = tag.get("perm")
    how = []
    if perm:
        if len(perm) != v.ndim:
            return Decoded(None, "", f"layout {perm} does not fit a tensor of shape {v.shape}")
        v = np.transpose(v, perm)
        how.append(f"perm {perm}")
    if v.shape != activation.values.shape:
        return Decoded(None, " ".join(how),
                       f"shape {v.shape} (torch layout), torch has {activation.values.shape}")
    if dtype == DataType["BINARY"] and activation.bipolar:
        bits = v.astype(np.int64)
        if not np.array_equal(bits, v) or (bits.size and (bits.min() < 0 or bits.max() > 1)):
            return Decoded(None, "xnor", "BINARY tensor holds values other than 0 and 1")
        return Decoded(2 * bits - 1, " ".join(how + ["xnor 2b-1"]))
    if dtype.is_integer():
        ints = v.astype(np.int64, copy=False)
        if v.dtype.kind == "f" and not np.array_equal(ints, v):
            return Decoded(None, " ".join(how), f"{dtype.name} tensor holds non-integers")
        return Decoded(ints, " ".join(how + [dtype.name]))
    scale = np.asarray(tag.get("scale", 1.0), dtype=np.float64)
    # the float product scale * q may carry a rounding error: the integer is what is compared
    try:
        ints = to_integers(v, scale, f"{dtype.name} tensor")
    except HwGenError as exc:
        return Decoded(None, " ".join(how), str(exc))
    what = "float" if np.all(scale == 1.0) else "float / scale"
    return Decoded(ints, " ".join(how + [what]))


@dataclass
class Mismatch:
    count: int
    first_index: tuple[int, ...]
    got: int
    want: int


def mismatch(got: np.ndarray, want: np.ndarray) -> Mismatch | None:
    """None if equal (``np.array_equal``), else how many differ and the first difference."""
    if np.array_equal(got, want):
        return None
    diff = np.argwhere(got != want)
    first = tuple(int(i) for i in diff[0])
    return Mismatch(len(diff), first, int(got[first]), int(want[first]))

