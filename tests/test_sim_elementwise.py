"""finn-plus's elementwise binary layers against FINN's execution: every op on small maps
(broadcast constants and streams), and the narrow, row-wise path of a per-channel constant on
a large map at the ends of its integer types."""

from __future__ import annotations

import numpy as np
import pytest
from qonnx.core.datatype import DataType

from test_sim_kernels import assert_same, random_tensor, single_node_model


ELEMENTWISE_OPS = ["Add", "Sub", "Mul", "AbsDiff", "Max", "And", "Or", "Xor", "Equal", "Less",
                   "LessOrEqual", "Greater", "GreaterOrEqual", "BitwiseAnd", "BitwiseOr", "BitwiseXor"]


@pytest.mark.parametrize("variant", range(2))
@pytest.mark.parametrize("op", ELEMENTWISE_OPS)
def test_elementwise_matches_finn(op, variant, finn_build_dir, tmp_path):
    index = 2 * ELEMENTWISE_OPS.index(op) + variant
    rng = np.random.default_rng(950 + index)
    lhs_dt, rhs_dt = [("INT4", "INT5"), ("UINT3", "BIPOLAR"), ("UINT8", "UINT2")][index % 3]
    lhs_shape = (1, 3, 4, 6)
    rhs_shape = [(1, 3, 4, 6), (1, 1, 1, 6), (6,), (1, 3, 1, 1)][index % 4]
    const = index % 3 == 2
    rhs_value = random_tensor(rng, rhs_dt, rhs_shape)
    inputs = {"lhs": (lhs_shape, lhs_dt)}
    inits = None
    if const:
        inits = {"rhs": (rhs_value, rhs_dt)}
    else:
        inputs["rhs"] = (rhs_shape, rhs_dt)
    model = single_node_model(
        f"Elementwise{op}", inputs, {"outp": (lhs_shape, "INT32")}, inits,
        lhs_dtype=lhs_dt, rhs_dtype=rhs_dt, out_dtype="INT32",
        lhs_shape=list(lhs_shape), rhs_shape=list(rhs_shape), out_shape=list(lhs_shape),
        lhs_style="input", rhs_style="const" if const else "input",
    )
    feed = {"lhs": random_tensor(rng, lhs_dt, lhs_shape)}
    if not const:
        feed["rhs"] = rhs_value
    assert_same(model, feed, tmp_path)


@pytest.mark.parametrize("op", ["Add", "Sub", "AbsDiff", "Max"])
@pytest.mark.parametrize("dt", ["INT15", "UINT15", "INT8"])
def test_elementwise_with_a_channel_constant_over_a_large_map_matches_finn(op, dt, finn_build_dir,
                                                                          tmp_path):
    """512 pixels: the constant is tiled along rows; INT15 sums fill int16 to its ends."""
    rng = np.random.default_rng(len(op) + len(dt))
    shape = (1, 16, 32, 6)
    info = DataType[dt]
    lhs = random_tensor(rng, dt, shape)
    lhs.reshape(-1, 6)[:4] = [[info.min()] * 6, [info.max()] * 6, [info.min()] * 6, [info.max()] * 6]
    rhs = np.array([info.min(), info.max(), info.min(), info.max(), 0, 1],
                   dtype=np.float32).reshape(1, 1, 1, 6)
    model = single_node_model(
        f"Elementwise{op}", {"lhs": (shape, dt)}, {"outp": (shape, "INT32")}, {"rhs": (rhs, dt)},
        lhs_dtype=dt, rhs_dtype=dt, out_dtype="INT32", lhs_shape=list(shape),
        rhs_shape=[1, 1, 1, 6], out_shape=list(shape), lhs_style="input", rhs_style="const",
    )
    assert_same(model, {"lhs": lhs}, tmp_path)
