"""sim's kernels for the ops of streamlined graphs (before the conversion to hardware layers)
against FINN's Python execution of single-node graphs (qonnx's ops and onnxruntime)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from test_sim_kernels import assert_same, random_tensor, single_node_model

QONNX = "qonnx.custom_op.general"

# (input NHWC, dtype, kernel, stride, pad_amount, pad_value, dilation)
IM2COL_CASES = [
    ((1, 6, 7, 3), "UINT8", (3, 3), (1, 1), (0, 0, 0, 0), 0, (1, 1)),
    ((1, 6, 7, 4), "INT2", (3, 3), (1, 1), (1, 1, 1, 1), 0, (1, 1)),
    ((1, 6, 7, 4), "INT2", (3, 3), (1, 1), (1, 1, 1, 1), -1, (1, 1)),
    ((1, 8, 9, 5), "BINARY", (3, 3), (2, 2), (1, 1, 1, 1), 0, (1, 1)),
    ((1, 9, 9, 2), "INT4", (3, 3), (1, 1), (2, 2, 2, 2), 0, (2, 2)),
    ((1, 5, 8, 3), "UINT3", (2, 3), (1, 2), (0, 1, 0, 1), 0, (1, 1)),
]


def _out_dim(size, k, s, pad, d):
    return (size + pad - d * (k - 1) - 1) // s + 1


@pytest.mark.parametrize("case", range(len(IM2COL_CASES)))
def test_im2col_matches_finn(case, finn_build_dir, tmp_path):
    shape, dt, k, s, pads, value, d = IM2COL_CASES[case]
    rng = np.random.default_rng(40 + case)
    n, h, w, c = shape
    oh = _out_dim(h, k[0], s[0], pads[0] + pads[2], d[0])
    ow = _out_dim(w, k[1], s[1], pads[1] + pads[3], d[1])
    model = single_node_model(
        "Im2Col", {"inp": (shape, dt)}, {"outp": ((n, oh, ow, k[0] * k[1] * c), dt)},
        domain=QONNX, stride=list(s), kernel_size=list(k), input_shape=str(shape),
        pad_amount=list(pads), pad_value=value, dilations=list(d),
    )
    assert_same(model, {"inp": random_tensor(rng, dt, shape)}, tmp_path)


@pytest.mark.parametrize("k,n", [(40, 7), (130, 3)])
def test_xnor_popcount_matmul_matches_finn(k, n, finn_build_dir, tmp_path):
    rng = np.random.default_rng(k)
    model = single_node_model(
        "XnorPopcountMatMul", {"inp": ((1, 5, k), "BINARY")}, {"outp": ((1, 5, n), "UINT32")},
        {"w": (random_tensor(rng, "BINARY", (k, n)), "BINARY")}, domain=QONNX,
    )
    assert_same(model, {"inp": random_tensor(rng, "BINARY", (1, 5, k))}, tmp_path)


@pytest.mark.parametrize("idt,wdt", [("INT2", "BIPOLAR"), ("UINT8", "BIPOLAR"), ("INT4", "INT3"),
                                     ("FLOAT32", "FLOAT32")])
def test_matmul_matches_finn(idt, wdt, finn_build_dir, tmp_path):
    rng = np.random.default_rng(7)
    x_dt = "INT8" if idt == "FLOAT32" else idt  # float operands holding small integers: exact
    w_dt = "INT4" if wdt == "FLOAT32" else wdt
    model = single_node_model(
        "MatMul", {"inp": ((1, 4, 6, 30), idt)}, {"outp": ((1, 4, 6, 9), "FLOAT32")},
        {"w": (random_tensor(rng, w_dt, (30, 9)), wdt)}, domain="",
    )
    feed = {"inp": random_tensor(rng, x_dt, (1, 4, 6, 30))}
    assert_same(model, feed, tmp_path)


@pytest.mark.parametrize("kernel,stride,pads", [((2, 2), (2, 2), (0, 0, 0, 0)),
                                                ((3, 3), (1, 1), (1, 1, 1, 1)),
                                                ((3, 2), (2, 1), (1, 0, 1, 1))])
def test_max_pool_nhwc_matches_finn(kernel, stride, pads, finn_build_dir, tmp_path):
    rng = np.random.default_rng(sum(kernel) + sum(pads))
    shape = (1, 8, 7, 3)
    oh = _out_dim(8, kernel[0], stride[0], pads[0] + pads[2], 1)
    ow = _out_dim(7, kernel[1], stride[1], pads[1] + pads[3], 1)
    model = single_node_model(
        "MaxPoolNHWC", {"inp": (shape, "INT4")}, {"outp": ((1, oh, ow, 3), "INT4")},
        domain=QONNX, kernel_shape=list(kernel), strides=list(stride), pads=list(pads),
    )
    assert_same(model, {"inp": random_tensor(rng, "INT4", shape)}, tmp_path)


@pytest.mark.parametrize("mode,nearest,scales", [
    ("asymmetric", "floor", [1, 2, 2, 1]),  # torch's nearest upsampling, made NHWC
    ("half_pixel", "round_prefer_floor", [1, 2, 3, 1]),
    ("half_pixel", "round_prefer_ceil", [1, 3, 2, 1]),
    ("align_corners", "round_prefer_floor", [1, 2, 2, 1]),
    ("asymmetric", "floor", None),  # sizes instead of scales
])
def test_nearest_resize_matches_finn(mode, nearest, scales, finn_build_dir, tmp_path):
    rng = np.random.default_rng(3)
    shape = (1, 3, 4, 2)
    factors = scales or [1, 2, 3, 1]
    out_shape = tuple(int(a * f) for a, f in zip(shape, factors))
    model = single_node_model(
        "Resize", {"inp": (shape, "INT4")}, {"outp": (out_shape, "INT4")}, domain="",
        mode="nearest", coordinate_transformation_mode=mode, nearest_mode=nearest,
    )
    model.set_opset_import("", 13)  # roi optional
    node = model.graph.node[0]
    node.input.append("")  # roi
    if scales is not None:
        node.input.append("scales")
        model.set_initializer("scales", np.asarray(scales, dtype=np.float32))
    else:
        node.input.extend(["", "sizes"])
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(out_shape, np.int64), "sizes"))
        model.graph.value_info.append(helper.make_tensor_value_info("sizes", TensorProto.INT64, [4]))
    assert_same(model, {"inp": random_tensor(rng, "INT4", shape)}, tmp_path)
