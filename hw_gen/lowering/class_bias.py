"""The classifier's per-class bias back into the integer domain, before its scale.

A Brevitas classifier with an integer bias on the accumulator's scale computes
``s * (acc + b)``; after streamlining FINN's graph ends ``integer scores -> [Transpose] ->
Mul(s) -> Add(c)`` with the float per-class ``c = b * s``, whose arg-max is not that of the
integers. Where ``c / s`` is an integer vector (up to float rounding), the tail is rewritten
``integer scores -> Add(c / s) -> [Transpose] -> Mul(s)``: the Add is an integer add (a
hardware layer) and LabelSelect can take the arg-max of its output on the chip.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from hw_gen.lowering.graph import is_positive_scalar_mul, scalar_initializer

# |c/s - round(c/s)| allowed: c and s come from the same float scale, rounded twice
INTEGER_TOLERANCE = 1e-3


def _smallest_int_type(values: np.ndarray) -> DataType:
    lo, hi = int(values.min()), int(values.max())
    for bits in range(2, 33):
        if -(1 << (bits - 1)) <= lo and hi < (1 << (bits - 1)):
            return DataType[f"INT{bits}"]
    raise ValueError("bias out of the 32-bit range")


def move_bias_before_scale(model: ModelWrapper) -> bool:
    """Rewrite the tail as the module docstring says; True if it did."""
    out = model.graph.output[0].name
    add = model.find_producer(out)
    if add is None or add.op_type != "Add" or model.get_initializer(add.input[1]) is None:
        return False
    mul = model.find_producer(add.input[0])
    if mul is None or not is_positive_scalar_mul(model, mul):
        return False
    transpose = model.find_producer(mul.input[0])
    scores = transpose.input[0] if transpose is not None and transpose.op_type == "Transpose" else mul.input[0]
    if transpose is not None and transpose.op_type != "Transpose":
        transpose = None
    if not model.get_tensor_datatype(scores).is_integer():
        return False
    scale = scalar_initializer(model, mul.input[1])
    bias = model.get_initializer(add.input[1]).astype(np.float64) / scale
    integer = np.round(bias)
    if np.abs(bias - integer).max() > INTEGER_TOLERANCE:
        return False
    shape = model.get_tensor_shape(scores)
    channels = integer.size
    if shape[-1 if transpose is not None else 1] != channels and channels != 1:
        return False
    if transpose is not None:
        perm = [a.ints for a in transpose.attribute if a.name == "perm"][0]
        # the bias broadcasts over the channel axis of the scores (before the transpose)
        target = [1] * len(shape)
        target[perm[1]] = channels
        integer = integer.reshape(target)
    # rewire: scores -> Add -> [Transpose] -> Mul -> output
    first = transpose if transpose is not None else mul
    summed = model.make_new_valueinfo_name()
    add.input[0], add.output[0] = scores, summed
    first.input[0] = summed
    mul.output[0] = out
    model.set_initializer(add.input[1], integer.astype(np.float32))
    model.set_tensor_datatype(add.input[1], _smallest_int_type(integer))
    nodes = model.graph.node
    nodes.remove(add)
    nodes.insert(list(nodes).index(first), add)
    return True


def integer_bias_add(model: ModelWrapper, node) -> bool:
    """True for an Add of an integer tensor and an integer constant (scores plus class bias)."""
    return (node.op_type == "Add" and model.get_initializer(node.input[1]) is not None
            and model.get_tensor_datatype(node.input[1]).is_integer()
            and model.get_tensor_datatype(node.input[0]).is_integer())
