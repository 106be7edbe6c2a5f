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


# Ops whose result of two integers of at most this many bits fits int32.
_NARROW_OPS = {"Add", "Sub", "AbsDiff", "Max"}
_NARROW_BITS = 30


def _operand(x: np.ndarray, dtype_name: str, narrow: bool) -> np.ndarray:
    if not dtype(dtype_name).is_integer:
        return np.asarray(x, dtype=np.float32)
    x = np.asarray(x)
    if not narrow or x.dtype.kind not in "iub":
        x = as_int64(x)
    return x.astype(np.int32, copy=False) if narrow else x


def _make(
    name: str, op: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> Callable[[Node, list[np.ndarray]], np.ndarray]:
    def kernel(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
        types = [dtype(node.attr(f"{side}_dtype")) for side in ("lhs", "rhs")]
        narrow = name in _NARROW_OPS and all(
            t.is_integer and t.bits <= _NARROW_BITS for t in types)
        lhs = _operand(inputs[0], node.attr("lhs_dtype"), narrow)
        rhs = _operand(inputs[1], node.attr("rhs_dtype"), narrow)
        out = op(lhs, rhs)
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
