"""Each sim kernel against FINN's own Python execution of single-layer graphs.

Every case builds a one-node FINN graph (as FINN's own tests do), executes it with
``finn.core.onnx_exec.execute_onnx`` and with sim through a written and re-read bundle, and
compares the integer outputs with ``np.array_equal``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model

import sim
from hw_gen.bundle import write_bundle

DOMAIN = "finn.custom_op.fpgadataflow"


def random_tensor(rng: np.random.Generator, dt_name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Random values of a FINN data type, float32 as FINN holds them."""
    dt = DataType[dt_name]
    if dt_name == "BIPOLAR":
        return rng.choice([-1.0, 1.0], size=shape).astype(np.float32)
    return rng.integers(int(dt.min()), int(dt.max()) + 1, size=shape).astype(np.float32)


def single_node_model(
    op_type: str,
    inputs: dict[str, tuple[tuple[int, ...], str]],
    outputs: dict[str, tuple[tuple[int, ...], str]],
    initializers: dict[str, tuple[np.ndarray, str]] | None = None,
    domain: str = DOMAIN,
    **attrs,
) -> ModelWrapper:
    """One node; ``inputs``/``outputs`` map tensor name -> (shape, FINN dtype); initializers
    follow the graph inputs in the node's input list."""
    initializers = initializers or {}
    if domain == DOMAIN:
        attrs.setdefault("backend", "fpgadataflow")
    node = helper.make_node(
        op_type,
        list(inputs) + list(initializers),
        list(outputs),
        domain=domain,
        name=f"{op_type}_0",
        **attrs,
    )
    vi = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))  # noqa: E731
    graph = helper.make_graph(
        [node],
        f"single_{op_type}",
        [vi(n, s) for n, (s, _) in inputs.items()],
        [vi(n, s) for n, (s, _) in outputs.items()],
    )
    model = ModelWrapper(qonnx_make_model(graph, producer_name="sim-test"))
    for name, (_, dt) in {**inputs, **outputs}.items():
        model.set_tensor_datatype(name, DataType[dt])
    for name, (value, dt) in initializers.items():
        model.set_initializer(name, np.asarray(value, dtype=np.float32))
        model.set_tensor_datatype(name, DataType[dt])
    return model


def finn_and_sim(model: ModelWrapper, feed: dict[str, np.ndarray], tmp_path: Path) -> tuple[dict, dict]:
    """Outputs of FINN's execution and of sim through a bundle written to disk."""
    from finn.core.onnx_exec import execute_onnx

    expected = execute_onnx(model, feed)
    json_path, _ = write_bundle(model, tmp_path / "bundle")
    got = sim.run(sim.load_bundle(json_path), feed)
    return expected, got


def assert_same(model: ModelWrapper, feed: dict[str, np.ndarray], tmp_path: Path) -> None:
    expected, got = finn_and_sim(model, feed, tmp_path)
    assert set(expected) == set(got)
    for name in expected:
        assert got[name].shape == expected[name].shape, name
        assert np.array_equal(got[name], expected[name]), name


def random_thresholds(
    rng: np.random.Generator, channels: int, steps: int, lo: int, hi: int, sort: bool = True
) -> np.ndarray:
    thr = rng.integers(lo, hi + 1, size=(channels, steps)).astype(np.float32)
    return np.sort(thr, axis=1) if sort else thr


# ---------------------------------------------------------------- MVAU
# (mw, mh, simd, pe, idt, wdt, mode, odt, vecs, extra)
#   mode: "xnor" (binaryXnorMode), "noact" (raw accumulator), "act" (thresholds)
MVAU_CASES = [
    (64, 32, 8, 4, "BINARY", "BINARY", "xnor-act", "BINARY", [1], {}),
    (27, 13, 3, 13, "BINARY", "BINARY", "xnor-noact", "UINT8", [1, 3, 5], {}),
    (72, 16, 72, 16, "BINARY", "BINARY", "xnor-act", "UINT2", [1, 4, 4], {}),
    (36, 12, 6, 3, "BIPOLAR", "BIPOLAR", "act", "BIPOLAR", [1, 2, 3], {}),
    (50, 10, 5, 2, "BIPOLAR", "BIPOLAR", "noact", "INT16", [1], {}),
    (33, 7, 11, 7, "INT4", "INT2", "act", "INT4", [1, 2, 2], {}),
    (16, 8, 4, 4, "UINT8", "BIPOLAR", "act", "UINT4", [1, 3, 3], {}),
    (24, 6, 2, 3, "BIPOLAR", "INT3", "noact", "INT16", [1, 5], {}),
    (19, 5, 19, 1, "INT8", "INT8", "noact", "INT32", [1], {}),
    (1100, 4, 10, 2, "INT8", "INT8", "noact", "INT32", [3], {}),  # bound > 2^24: float64
    (40, 9, 8, 3, "UINT4", "INT4", "act", "INT3", [1, 2, 3], {"shared": True}),
    (40, 9, 8, 3, "INT3", "TERNARY", "act", "UINT3", [1, 4, 2], {"unsorted": True}),
    (32, 8, 4, 8, "BINARY", "BINARY", "xnor-act", "BIPOLAR", [1, 3, 3], {}),
    # bit-plane products: few-bit inputs times BINARY / BIPOLAR weights
    (72, 8, 8, 4, "INT2", "BIPOLAR", "act", "INT2", [1, 3, 5], {}),
    (70, 6, 7, 3, "INT2", "BIPOLAR", "noact", "INT16", [1, 4], {}),
    (45, 5, 5, 5, "UINT2", "BINARY", "noact", "UINT8", [1, 2, 3], {}),
    (33, 7, 11, 7, "TERNARY", "BIPOLAR", "act", "UINT3", [1, 2, 2], {}),
    (130, 4, 13, 2, "INT4", "BIPOLAR", "noact", "INT16", [1, 3], {}),
    (64, 16, 8, 4, "UINT4", "BINARY", "act", "INT4", [1, 2, 2], {}),
    (27, 9, 27, 3, "BINARY", "BIPOLAR", "noact", "INT8", [1, 5], {}),
    (20, 3, 5, 3, "INT3", "BINARY", "noact", "INT8", [1, 6], {}),
]


def _mvau_model(rng, mw, mh, simd, pe, idt, wdt, mode, odt, vecs, extra):
    xnor = mode.startswith("xnor")
    act = mode.endswith("act") and not mode.endswith("noact")
    w = random_tensor(rng, wdt, (mw, mh))
    inits = {"weights": (w, wdt)}
    attrs = dict(
        MW=mw, MH=mh, SIMD=simd, PE=pe, inputDataType=idt, weightDataType=wdt,
        outputDataType=odt, binaryXnorMode=int(xnor), noActivation=int(not act),
        numInputVectors=vecs, accDataType="INT32",
    )
    if act:
        o = DataType[odt]
        steps = 1 if odt == "BIPOLAR" else o.get_num_possible_values() - 1
        bound = mw * max(abs(DataType[idt].min()), DataType[idt].max()) * max(
            abs(DataType[wdt].min()), DataType[wdt].max()
        )
        lo, hi = (0, mw) if xnor else (-int(bound), int(bound))
        rows = 1 if extra.get("shared") else mh
        thr = random_thresholds(rng, rows, steps, lo // 2, hi // 2, sort=not extra.get("unsorted"))
        inits["thresh"] = (thr, "INT32")
        attrs["ActVal"] = 0 if odt == "BIPOLAR" else int(o.min())
    shape_in = tuple(vecs) + (mw,)
    shape_out = tuple(vecs) + (mh,)
    model = single_node_model("MVAU", {"inp": (shape_in, idt)}, {"outp": (shape_out, odt)}, inits, **attrs)
    return model, {"inp": random_tensor(rng, idt, shape_in)}


@pytest.mark.parametrize("case", range(len(MVAU_CASES)))
def test_mvau_matches_finn(case, finn_build_dir, tmp_path):
    rng = np.random.default_rng(100 + case)
    model, feed = _mvau_model(rng, *MVAU_CASES[case])
    assert_same(model, feed, tmp_path)


# ---------------------------------------------------------------- Thresholding
def _thresholding_case(i: int):
    rng = np.random.default_rng(200 + i)
    idt = ["INT8", "UINT6", "INT12", "BINARY", "INT16", "UINT8"][i % 6]
    odt = ["UINT2", "INT3", "BIPOLAR", "UINT4", "BINARY", "INT2"][(i * 5) % 6]
    c = int(rng.choice([1, 3, 8, 12, 16]))
    pe = int(rng.choice([p for p in (1, 2, 3, 4, 8, 12, 16) if c % p == 0]))
    vecs = [[1], [1, 5], [1, 3, 4]][i % 3]
    o, d = DataType[odt], DataType[idt]
    steps = 1 if odt == "BIPOLAR" else o.get_num_possible_values() - 1
    rows = 1 if i % 4 == 3 else c
    thr = random_thresholds(rng, rows, steps, int(d.min()), int(d.max()) + 1, sort=(i % 5 != 4))
    if i % 3 == 1:  # fractional thresholds, as before RoundAndClipThresholds
        thr = thr - 0.5
    actval = 0 if odt == "BIPOLAR" else int(o.min())
    shape = tuple(vecs) + (c,)
    model = single_node_model(
        "Thresholding", {"inp": (shape, idt)}, {"outp": (shape, odt)}, {"thresh": (thr, "INT32")},
        NumChannels=c, PE=pe, numSteps=steps, inputDataType=idt, weightDataType="INT32",
        outputDataType=odt, numInputVectors=vecs, ActVal=actval,
    )
    return model, {"inp": random_tensor(rng, idt, shape)}


@pytest.mark.parametrize("case", range(14))
def test_thresholding_matches_finn(case, finn_build_dir, tmp_path):
    assert_same(*_thresholding_case(case), tmp_path)


# ---------------------------------------------------------------- sliding window
SWG_CASES = [
    # (ifm_h, ifm_w, c, (kh, kw), (sh, sw), (dh, dw), simd, dt, depthwise)
    (8, 8, 4, (3, 3), (1, 1), (1, 1), 4, "BINARY", 0),
    (9, 7, 3, (3, 3), (2, 2), (1, 1), 1, "INT4", 0),
    (10, 12, 2, (3, 3), (1, 1), (2, 2), 2, "UINT8", 0),
    (11, 13, 5, (3, 2), (2, 3), (1, 1), 5, "INT8", 0),
    (16, 9, 6, (5, 3), (1, 2), (2, 3), 3, "BIPOLAR", 0),
    (1, 20, 4, (1, 5), (1, 2), (1, 1), 2, "UINT3", 0),
    (20, 1, 4, (3, 1), (1, 1), (1, 1), 4, "INT2", 0),
    (7, 7, 8, (7, 7), (1, 1), (1, 1), 8, "BINARY", 0),
    (6, 6, 16, (2, 2), (2, 2), (1, 1), 8, "UINT2", 0),
    (13, 11, 3, (3, 3), (3, 3), (3, 2), 3, "INT3", 0),
    (8, 10, 4, (3, 3), (1, 1), (1, 1), 2, "UINT4", 1),
    (12, 12, 6, (3, 3), (2, 2), (2, 2), 3, "INT8", 1),
    (5, 5, 1, (1, 1), (1, 1), (1, 1), 1, "BINARY", 0),
]


def _swg_model(ifm_h, ifm_w, c, k, s, d, simd, dt, depthwise):
    from sim.kernels.window import conv_out_dim

    ofm = [conv_out_dim(ifm_h, k[0], s[0], 0, d[0]), conv_out_dim(ifm_w, k[1], s[1], 0, d[1])]
    shape_in = (1, ifm_h, ifm_w, c)
    shape_out = (1, ofm[0], ofm[1], k[0] * k[1] * c)
    return single_node_model(
        "ConvolutionInputGenerator", {"inp": (shape_in, dt)}, {"outp": (shape_out, dt)},
        ConvKernelDim=list(k), IFMChannels=c, IFMDim=[ifm_h, ifm_w], OFMDim=ofm, SIMD=simd,
        Stride=list(s), Dilation=list(d), inputDataType=dt, outputDataType=dt,
        depthwise=depthwise, is1D=int(ifm_h == 1 or ifm_w == 1),
    ), shape_in


@pytest.mark.parametrize("case", range(len(SWG_CASES)))
def test_sliding_window_matches_finn(case, finn_build_dir, tmp_path):
    rng = np.random.default_rng(300 + case)
    model, shape_in = _swg_model(*SWG_CASES[case])
    assert_same(model, {"inp": random_tensor(rng, SWG_CASES[case][7], shape_in)}, tmp_path)


# ---------------------------------------------------------------- padding
@pytest.mark.parametrize("case", range(12))
def test_fmpadding_matches_finn(case, finn_build_dir, tmp_path):
    rng = np.random.default_rng(400 + case)
    h, w, c = (int(v) for v in rng.integers(1, 9, size=3))
    pad = [int(p) for p in rng.integers(0, 4, size=4)]
    dt = ["BINARY", "INT4", "UINT8", "INT2"][case % 4]
    shape_out = (1, h + pad[0] + pad[2], w + pad[1] + pad[3], c)
    model = single_node_model(
        "FMPadding", {"inp": ((1, h, w, c), dt)}, {"outp": (shape_out, dt)},
        ImgDim=[h, w], Padding=pad, NumChannels=c, SIMD=c, inputDataType=dt,
    )
    assert_same(model, {"inp": random_tensor(rng, dt, (1, h, w, c))}, tmp_path)


@pytest.mark.parametrize("case", range(12))
def test_fmpadding_pixel_matches_finn(case, finn_build_dir, tmp_path):
    rng = np.random.default_rng(450 + case)
    h, w, c = (int(v) for v in rng.integers(1, 7, size=3))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    dt = ["INT4", "UINT2", "BINARY"][case % 3]
    shape_out = (1, h + (h - 1) * (sh - 1), w + (w - 1) * (sw - 1), c)
    model = single_node_model(
        "FMPadding_Pixel", {"inp": ((1, h, w, c), dt)}, {"outp": (shape_out, dt)},
        ImgDim=[h, w], Stride=[sh, sw], NumChannels=c, SIMD=1, inputDataType=dt,
    )
    assert_same(model, {"inp": random_tensor(rng, dt, (1, h, w, c))}, tmp_path)


# ---------------------------------------------------------------- pooling
@pytest.mark.parametrize("case", range(15))
def test_pool_matches_finn(case, finn_build_dir, tmp_path):
    rng = np.random.default_rng(500 + case)
    fn = ["MaxPool", "AccPool", "QuantAvgPool"][case % 3]
    idt = ["UINT4", "INT4", "UINT8", "INT2", "BINARY"][case % 5]
    k = [int(v) for v in rng.integers(1, 4, size=2)]
    ch, oh, ow = (int(v) for v in rng.integers(1, 7, size=3))
    odt = {"MaxPool": idt, "AccPool": "INT16", "QuantAvgPool": "UINT4" if idt.startswith("U") else "INT4"}[fn]
    if fn == "QuantAvgPool" and idt in ("BINARY",):
        odt = "UINT2"
    shape_in = (1, oh, ow, k[0] * k[1] * ch)
    model = single_node_model(
        "Pool", {"inp": (shape_in, idt)}, {"outp": ((1, oh, ow, ch), odt)},
        Channels=ch, PE=1, KernelSize=k, Function=fn, OutImgDims=[oh, ow],
        InputDataType=idt, OutputDataType=odt,
    )
    assert_same(model, {"inp": random_tensor(rng, idt, shape_in)}, tmp_path)


@pytest.mark.parametrize("case", range(12))
def test_global_acc_pool_matches_finn(case, finn_build_dir, tmp_path):
    rng = np.random.default_rng(550 + case)
    h, w, c = (int(v) for v in rng.integers(1, 9, size=3))
    idt = ["UINT4", "INT4", "BINARY", "INT8"][case % 4]
    odt = "INT32" if idt.startswith("INT") else "UINT32"
    model = single_node_model(
        "GlobalAccPool", {"inp": ((1, h, w, c), idt)}, {"outp": ((1, 1, 1, c), odt)},
        NumChannels=c, PE=1, inputDataType=idt, numInputVectors=[1, h, w],
    )
    assert_same(model, {"inp": random_tensor(rng, idt, (1, h, w, c))}, tmp_path)


# ---------------------------------------------------------------- upsampling
@pytest.mark.parametrize("case", range(12))
def test_upsample_matches_finn(case, finn_build_dir, tmp_path):
    rng = np.random.default_rng(600 + case)
    hi, wi, c = (int(v) for v in rng.integers(1, 7, size=3))
    fh, fw = (int(v) for v in rng.integers(1, 4, size=2))
    dt = ["BINARY", "INT4", "UINT8"][case % 3]
    model = single_node_model(
        "UpsampleNearestNeighbour", {"inp": ((1, hi, wi, c), dt)},
        {"outp": ((1, hi * fh, wi * fw, c), dt)},
        HI=hi, WI=wi, HO=hi * fh, WO=wi * fw, NumChannels=c, SIMD=1, inputDataType=dt,
    )
    assert_same(model, {"inp": random_tensor(rng, dt, (1, hi, wi, c))}, tmp_path)


# ---------------------------------------------------------------- label select
@pytest.mark.parametrize("case", range(12))
def test_label_select_matches_finn_with_ties(case, finn_build_dir, tmp_path):
    rng = np.random.default_rng(650 + case)
    labels = int(rng.choice([4, 10, 19, 32]))
    k = int(rng.integers(1, labels + 1))
    idt = ["UINT2", "INT3", "INT16", "BINARY"][case % 4]  # narrow types: many ties
    model = single_node_model(
        "LabelSelect", {"inp": ((1, labels), idt)}, {"outp": ((1, k), "UINT8")},
        Labels=labels, PE=1, K=k, inputDataType=idt, outputDataType="UINT8",
    )
    assert_same(model, {"inp": random_tensor(rng, idt, (1, labels))}, tmp_path)


# ---------------------------------------------------------------- stream plumbing
@pytest.mark.parametrize("case", range(12))
def test_concat_matches_finn(case, finn_build_dir, tmp_path):
    rng = np.random.default_rng(700 + case)
    n_in = 2 + case % 3
    widths = [int(v) for v in rng.integers(1, 9, size=n_in)]
    dts = [str(rng.choice(["BINARY", "INT4", "UINT3", "INT8"])) for _ in range(n_in)]
    vecs = [[1], [1, 3, 2]][case % 2]
    inputs = {f"in{i}": (tuple(vecs) + (wd,), dt) for i, (wd, dt) in enumerate(zip(widths, dts))}
    model = single_node_model(
        "StreamingConcat", inputs, {"outp": (tuple(vecs) + (sum(widths),), "INT9")},
        SIMD=1, ChannelsPerStream=widths, inputDataTypes=dts, numInputVectors=vecs,
    )
    feed = {n: random_tensor(rng, dt, s) for n, (s, dt) in inputs.items()}
    assert_same(model, feed, tmp_path)


@pytest.mark.parametrize("case", range(12))
def test_split_matches_finn(case, finn_build_dir, tmp_path):
    rng = np.random.default_rng(750 + case)
    n_out = 2 + case % 3
    widths = [int(v) for v in rng.integers(1, 9, size=n_out)]
    dt = ["INT4", "BINARY", "UINT8"][case % 3]
    vecs = [[1], [1, 2, 3]][case % 2]
    outputs = {f"out{i}": (tuple(vecs) + (wd,), dt) for i, wd in enumerate(widths)}
    model = single_node_model(
        "StreamingSplit", {"inp": (tuple(vecs) + (sum(widths),), dt)}, outputs,
        SIMD=1, ChannelsPerStream=widths, inputDataType=dt, numInputVectors=vecs,
    )
    assert_same(model, {"inp": random_tensor(rng, dt, tuple(vecs) + (sum(widths),))}, tmp_path)


@pytest.mark.parametrize("case", range(12))
def test_duplicate_streams_matches_finn(case, finn_build_dir, tmp_path):
    rng = np.random.default_rng(800 + case)
    n_out = 2 + case % 3
    c = int(rng.integers(1, 17))
    vecs = [[1], [1, 4, 3]][case % 2]
    dt = ["BINARY", "INT4", "UINT7"][case % 3]
    shape = tuple(vecs) + (c,)
    model = single_node_model(
        "DuplicateStreams", {"inp": (shape, dt)}, {f"out{i}": (shape, dt) for i in range(n_out)},
        NumChannels=c, PE=1, NumOutputStreams=n_out, inputDataType=dt, numInputVectors=vecs,
    )
    assert_same(model, {"inp": random_tensor(rng, dt, shape)}, tmp_path)


@pytest.mark.parametrize("case", range(12))
def test_dwc_and_fifo_pass_data_through(case, finn_build_dir, tmp_path):
    rng = np.random.default_rng(850 + case)
    c = int(rng.choice([4, 6, 12]))
    dt = ["BINARY", "INT4", "UINT8"][case % 3]
    shape = (1, int(rng.integers(1, 5)), int(rng.integers(1, 5)), c)
    bits = DataType[dt].bitwidth()
    if case % 2:
        model = single_node_model(
            "StreamingDataWidthConverter", {"inp": (shape, dt)}, {"outp": (shape, dt)},
            inShape=list(shape), outShape=list(shape), inWidth=2 * bits, outWidth=c * bits,
            dataType=dt,
        )
    else:
        model = single_node_model(
            "StreamingFIFO", {"inp": (shape, dt)}, {"outp": (shape, dt)},
            depth=16, folded_shape=list(shape[:-1]) + [c // 2, 2], normal_shape=list(shape), dataType=dt,
        )
    assert_same(model, {"inp": random_tensor(rng, dt, shape)}, tmp_path)


@pytest.mark.parametrize("case", range(12))
def test_crop_matches_finn(case, finn_build_dir, tmp_path):
    rng = np.random.default_rng(900 + case)
    h, w, c = (int(v) for v in rng.integers(3, 9, size=3))
    n, s, we, e = (int(v) for v in rng.integers(0, 2, size=4))
    dt = ["INT4", "BINARY"][case % 2]
    model = single_node_model(
        "Crop", {"inp": ((1, h, w, c), dt)}, {"outp": ((1, h - n - s, w - we - e, c), dt)},
        DataType=dt, ImgDim=[h, w], NumChannels=c, CropNorth=n, CropSouth=s, CropWest=we,
        CropEast=e, SIMD=1, numInputVectors=[1],
    )
    assert_same(model, {"inp": random_tensor(rng, dt, (1, h, w, c))}, tmp_path)


# ---------------------------------------------------------------- VVAU (depthwise)
VVAU_CASES = [
    # (h, w, c, (kh, kw), pe, idt, wdt, odt or None (no activation), after_window)
    (4, 5, 6, (3, 3), 2, "INT4", "INT3", "UINT2", False),
    (3, 3, 8, (3, 3), 8, "UINT4", "INT4", None, False),
    (5, 4, 4, (2, 3), 1, "BIPOLAR", "BIPOLAR", "BIPOLAR", False),
    (2, 6, 9, (1, 3), 3, "INT8", "INT2", "INT4", False),
    (4, 4, 12, (3, 3), 4, "UINT2", "BIPOLAR", None, False),
    (6, 3, 5, (3, 1), 5, "BIPOLAR", "BIPOLAR", None, False),
    (7, 7, 4, (3, 3), 2, "INT4", "INT4", "INT3", True),
    (6, 8, 6, (3, 3), 3, "UINT8", "INT2", None, True),
    (9, 5, 3, (5, 3), 1, "BIPOLAR", "BIPOLAR", "BIPOLAR", True),
    (8, 8, 8, (2, 2), 4, "INT2", "INT3", "UINT3", True),
    (5, 7, 2, (3, 3), 2, "UINT4", "BIPOLAR", "INT2", True),
    (10, 6, 16, (3, 3), 8, "INT4", "INT2", None, True),
]


def _vvau_model(rng, h, w, c, k, pe, idt, wdt, odt, after_window):
    kk = k[0] * k[1]
    wts = random_tensor(rng, wdt, (c, 1, k[0], k[1]))
    act = odt is not None
    odt = odt or "INT32"
    inits = {"weights": (wts, wdt)}
    attrs = dict(
        PE=pe, SIMD=1, Dim=[h, w], Channels=c, Kernel=list(k), inputDataType=idt,
        weightDataType=wdt, outputDataType=odt, accDataType="INT32", noActivation=int(not act),
    )
    if act:
        o = DataType[odt]
        steps = 1 if odt == "BIPOLAR" else o.get_num_possible_values() - 1
        bound = kk * max(abs(DataType[idt].min()), DataType[idt].max()) * max(
            abs(DataType[wdt].min()), DataType[wdt].max()
        )
        lo = 0 if (idt == wdt == "BIPOLAR") else -int(bound) // 2
        inits["thresh"] = (random_thresholds(rng, c, steps, lo, int(bound) // 2), "INT32")
        attrs["ActVal"] = 0 if odt == "BIPOLAR" else int(o.min())
    vvau_in = (1, h, w, kk * c)
    vvau = helper.make_node(
        "VVAU", ["win"] + list(inits), ["outp"], domain=DOMAIN, backend="fpgadataflow",
        name="VVAU_0", **attrs,
    )
    nodes, graph_in = [vvau], ("win", vvau_in)
    if after_window:
        ifm = (h + k[0] - 1, w + k[1] - 1)
        graph_in = ("inp", (1, ifm[0], ifm[1], c))
        nodes.insert(0, helper.make_node(
            "ConvolutionInputGenerator", ["inp"], ["win"], domain=DOMAIN, backend="fpgadataflow",
            name="SWG_0", ConvKernelDim=list(k), IFMChannels=c, IFMDim=list(ifm), OFMDim=[h, w],
            SIMD=pe, Stride=[1, 1], Dilation=[1, 1], inputDataType=idt, outputDataType=idt,
            depthwise=1,
        ))
    vi = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s))  # noqa: E731
    graph = helper.make_graph(nodes, "vvau", [vi(*graph_in)], [vi("outp", (1, h, w, c))],
                              value_info=[vi("win", vvau_in)] if after_window else [])
    model = ModelWrapper(qonnx_make_model(graph, producer_name="sim-test"))
    for name, dt in ((graph_in[0], idt), ("win", idt), ("outp", odt)):
        model.set_tensor_datatype(name, DataType[dt])
    for name, (value, dt) in inits.items():
        model.set_initializer(name, value)
        model.set_tensor_datatype(name, DataType[dt])
    return model, {graph_in[0]: random_tensor(rng, idt, graph_in[1])}


@pytest.mark.parametrize("case", range(len(VVAU_CASES)))
def test_vvau_matches_finn(case, finn_build_dir, tmp_path):
    rng = np.random.default_rng(1000 + case)
    assert_same(*_vvau_model(rng, *VVAU_CASES[case]), tmp_path)


# ---------------------------------------------------------------- plain ONNX / qonnx ops at the ends
def _onnx_case(i: int):
    rng = np.random.default_rng(1100 + i)
    kind = ["MultiThreshold", "Transpose", "Reshape", "Mul", "Add", "Sub", "Div", "Flatten",
            "ArgMax", "TopK", "Squeeze", "Unsqueeze", "Identity", "Concat"][i % 14]
    x_shape = (1, 4, 3, 5)
    x = rng.integers(-20, 21, size=x_shape).astype(np.float32)
    inits, attrs, out_shape, outputs = {}, {}, x_shape, None
    domain, x_dt, out_dt = "", "INT8", "FLOAT32"
    if kind == "MultiThreshold":
        domain, out_dt = "qonnx.custom_op.general", "UINT3"
        inits["thr"] = (np.sort(rng.integers(-20, 21, size=(4, 7)), axis=1) + 0.5, "FLOAT32")
        attrs = dict(out_dtype="UINT3", out_scale=1.0, out_bias=0.0)
    elif kind == "Transpose":
        attrs, out_shape = {"perm": [0, 2, 3, 1]}, (1, 3, 5, 4)
    elif kind == "Reshape":
        inits["shape"] = (np.array([1, -1, 5]), "INT64")
        out_shape = (1, 12, 5)
    elif kind in ("Mul", "Add", "Sub", "Div"):
        x = x * np.float32(0.37)
        x_dt = "FLOAT32"
        inits["c"] = (rng.normal(size=(1, 4, 1, 1)).astype(np.float32), "FLOAT32")
    elif kind == "Flatten":
        out_shape = (1, 60)
    elif kind == "ArgMax":
        attrs, out_shape, out_dt = {"axis": 1, "keepdims": 1}, (1, 1, 3, 5), "INT64"
        x = rng.integers(0, 3, size=x_shape).astype(np.float32)  # ties
    elif kind == "TopK":
        inits["k"] = (np.array([2]), "INT64")
        outputs = {"values": ((1, 4, 3, 2), "FLOAT32"), "outp": ((1, 4, 3, 2), "INT64")}
        x = rng.integers(0, 3, size=x_shape).astype(np.float32)
    elif kind == "Squeeze":
        x_shape, out_shape = (1, 4, 1, 5), (1, 4, 5)
        x = x[:, :, :1, :]
        inits["axes"] = (np.array([2]), "INT64")
    elif kind == "Unsqueeze":
        inits["axes"] = (np.array([2]), "INT64")
        out_shape = (1, 4, 1, 3, 5)
    elif kind == "Concat":
        inits["c"] = (rng.integers(-3, 4, size=(1, 4, 3, 2)).astype(np.float32), "INT8")
        attrs, out_shape = {"axis": -1}, (1, 4, 3, 7)
    outputs = outputs or {"outp": (out_shape, out_dt)}
    model = single_node_model(kind, {"inp": (x_shape, x_dt)}, outputs, None, domain=domain, **attrs)
    model.set_opset_import("", 13)  # Squeeze/Unsqueeze take axes as an input
    for name, (value, dt) in inits.items():
        model.graph.node[0].input.append(name)
        value = np.asarray(value)
        if value.dtype.kind == "i":
            # onnxruntime-executed nodes see constants through value_info, as after InferShapes
            model.graph.initializer.append(numpy_helper.from_array(value.astype(np.int64), name))
            vi = helper.make_tensor_value_info(name, TensorProto.INT64, list(value.shape))
            model.graph.value_info.append(vi)
        else:
            model.set_initializer(name, value.astype(np.float32))
            model.set_tensor_datatype(name, DataType[dt])
    if kind in ("ArgMax", "TopK"):
        for out in model.graph.output:
            if out.name == "outp":
                out.type.tensor_type.elem_type = TensorProto.INT64
    return model, {"inp": x}


@pytest.mark.parametrize("case", range(28))
def test_onnx_ops_match_finn(case, finn_build_dir, tmp_path):
    assert_same(*_onnx_case(case), tmp_path)


# ---------------------------------------------------------------- accumulator width
def test_xnor_accumulator_wraps_where_finn_python_does_not(finn_build_dir, tmp_path):
    """FINN sizes an XNOR accumulator for the ±1 range while the hardware counts matches
    0..MW. sim wraps to the declared accDataType like the hardware; FINN's Python execution
    keeps the true popcount, so the two differ exactly where the popcount overflows."""
    from finn.transformation.fpgadataflow.minimize_accumulator_width import MinimizeAccumulatorWidth

    rng = np.random.default_rng(1300)
    mw, mh = 144, 4
    model, _ = _mvau_model(rng, mw, mh, 16, 2, "BINARY", "BINARY", "xnor-noact", "INT32", [1, 6], {})
    model = model.transform(MinimizeAccumulatorWidth())
    acc = DataType[getattr_node(model, "accDataType")]
    assert acc.bitwidth() < int(np.ceil(np.log2(mw + 1))) + 1, f"FINN chose {acc.name}"
    w = model.get_initializer("weights")
    x = random_tensor(rng, "BINARY", (1, 6, mw))
    x[0, 0] = w[:, 0]  # popcount MW with column 0
    x[0, 1] = w[:, 1]
    expected, got = finn_and_sim(model, {"inp": x}, tmp_path)
    finn_out, sim_out = expected["outp"], got["outp"]
    assert finn_out.max() > acc.max()  # FINN shows the true popcount (e.g. 144) ...
    span = 2 ** acc.bitwidth()
    wrapped = (finn_out - acc.min()) % span + acc.min()
    assert np.array_equal(sim_out, wrapped)  # ... sim shows the hardware's wrap (144 -> -112)
    differs = finn_out != sim_out
    assert np.array_equal(differs, finn_out > acc.max())
    assert differs.sum() >= 2


def getattr_node(model: ModelWrapper, attr: str):
    from qonnx.custom_op.registry import getCustomOp

    return getCustomOp(model.graph.node[0]).get_nodeattr(attr)


def test_wide_enough_accumulator_makes_sim_and_finn_agree(finn_build_dir, tmp_path):
    rng = np.random.default_rng(1301)
    mw = 144
    model, _ = _mvau_model(rng, mw, 4, 16, 2, "BINARY", "BINARY", "xnor-noact", "INT32", [1, 6], {})
    node = model.graph.node[0]
    for a in node.attribute:
        if a.name in ("accDataType", "outputDataType"):
            a.s = b"INT9"  # ceil(log2(145)) + 1 bits hold every popcount
    model.set_tensor_datatype("outp", DataType["INT9"])
    x = random_tensor(rng, "BINARY", (1, 6, mw))
    x[0, 0] = model.get_initializer("weights")[:, 0]
    assert_same(model, {"inp": x}, tmp_path)
