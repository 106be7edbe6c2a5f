"""finn-plus's elementwise binary layers (``Elementwise<Op>``, elementwise_binary.py).

finn-plus has no AddStreams: ``InferElementwiseBinaryOperation`` turns an Add of two streams
(or of a stream and a constant) into ``ElementwiseAdd``. FINN executes these with numpy
broadcasting in int64 for integer operands; the output then wraps to ``out_dtype``.
``ElementwiseDiv`` is not modelled (FINN's execution divides as floats into an integer type).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.bundle import Node
from sim.datatypes import as_int64, dtype
from sim.kernels import register

_OPS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "AbsDiff": lambda a, b: np.abs(a - b),
    "Max": np.maximum,
    "And": np.logical_and,
    "Or": np.logical_or,
    "Xor": np.logical_xor,
    "Equal": np.equal,
    "Less": np.less,
    "LessOrEqual": np.less_equal,
    "Greater": np.greater,
    "GreaterOrEqual": np.greater_equal,
    "BitwiseAnd": np.bitwise_and,
    "BitwiseOr": np.bitwise_or,
    "BitwiseXor": np.bitwise_xor,
}


# Ops whose result of two integers of b bits needs at most b + 1 bits: int16 or int32 hold it
# where b + 1 fits (with the sign).
_NARROW_OPS = {"Add", "Sub", "AbsDiff", "Max"}
# A per-channel constant is tiled over this many pixels so that the loop runs along rows
# (numpy's broadcast over a short last axis loops per pixel).
_ROW_PIXELS = 256


def _operand(x: np.ndarray, dtype_name: str, container) -> np.ndarray:
    if not dtype(dtype_name).is_integer:
        return np.asarray(x, dtype=np.float32)
    x = np.asarray(x)
    if container is None or x.dtype.kind not in "iub":
        x = as_int64(x)
    return x if container is None else x.astype(container, copy=False)


def _narrow_type(name: str, types) -> type | None:
    """int16 or int32 where the op's result of the two integer types fits, else None."""
    if name not in _NARROW_OPS or not all(t.is_integer for t in types):
        return None
    bits = max(t.bits + (0 if t.signed else 1) for t in types) + 1
    return np.int16 if bits <= 16 else np.int32 if bits <= 31 else None


def _along_rows(lhs: np.ndarray, rhs: np.ndarray):
    """``lhs`` (..., C) and a per-channel ``rhs`` (1, ..., 1, C) as rows of ``_ROW_PIXELS``
    pixels and the constant tiled to one row, where the pixels divide; else unchanged."""
    if (lhs.ndim < 2 or rhs.ndim != lhs.ndim or rhs.shape[-1] != lhs.shape[-1]
            or any(d != 1 for d in rhs.shape[:-1]) or not lhs.flags.c_contiguous):
        return lhs, rhs
    pixels = lhs.size // max(1, lhs.shape[-1])
    k = _ROW_PIXELS
    if pixels < k or pixels % k:
        return lhs, rhs
    return lhs.reshape(pixels // k, k * lhs.shape[-1]), np.tile(rhs.reshape(-1), k)


def _make(
    name: str, op: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> Callable[[Node, list[np.ndarray]], np.ndarray]:
    def kernel(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
        types = [dtype(node.attr(f"{side}_dtype")) for side in ("lhs", "rhs")]
        container = _narrow_type(name, types)
        lhs = _operand(inputs[0], node.attr("lhs_dtype"), container)
        rhs = _operand(inputs[1], node.attr("rhs_dtype"), container)
        shape = np.broadcast_shapes(lhs.shape, rhs.shape)
        a, b = _along_rows(lhs, rhs) if shape == lhs.shape else (lhs, rhs)
        out = op(a, b).reshape(shape)
        return out.astype(np.int64) if out.dtype == bool else out

    return kernel


for _name, _op in _OPS.items():
    register(f"Elementwise{_name}", reshape=True)(_make(_name, _op))


@register("ElementwiseBitShift", reshape=True)
def elementwise_bitshift(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    lhs, rhs = as_int64(inputs[0]), as_int64(inputs[1])
    if node.attr("direction") == "LEFT":
        return np.left_shift(lhs, rhs)
    return np.right_shift(lhs, rhs)
