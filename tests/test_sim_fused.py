"""The fused sliding window + MVAU kernel: the same integers as the two kernels in turn and as
FINN's execution, on padded convolutions of every product kind it takes (and one it declines:
a product beyond float32's exact range)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model

import sim
import sim.kernels as kernels
import sim.kernels.fused as fused_module
from hw_gen.bundle import to_sim_bundle
from sim.exact import packed_sign_dot, plane_dot, pack_bit_rows
from test_sim_kernels import random_tensor, random_thresholds

FPGA = dict(domain="finn.custom_op.fpgadataflow", backend="fpgadataflow")

# (C, kernel, stride, dilation, pad, idt, wdt, xnor, odt, MH, fused, INT2 path forced)
CASES = [
    (16, (3, 3), (1, 1), (1, 1), 0, "BINARY", "BINARY", True, "BIPOLAR", 8, True, None),
    (12, (3, 3), (2, 2), (1, 1), 0, "BIPOLAR", "BIPOLAR", False, None, 5, True, None),
    (8, (3, 3), (1, 1), (1, 1), 1, "INT2", "BIPOLAR", False, "INT2", 6, True, "signs"),
    (7, (3, 3), (1, 1), (1, 1), 1, "INT2", "BIPOLAR", False, None, 4, True, "signs"),
    (7, (3, 3), (1, 1), (1, 1), 1, "INT2", "BIPOLAR", False, None, 4, True, "planes"),
    (5, (2, 3), (1, 1), (2, 2), 0, "UINT2", "BINARY", False, None, 3, True, None),
    (8, (3, 3), (1, 1), (2, 1), 2, "INT4", "BIPOLAR", False, "INT3", 4, True, None),
    (9, (3, 3), (1, 2), (1, 1), 1, "TERNARY", "BIPOLAR", False, "UINT2", 4, True, None),
    (3, (3, 3), (1, 1), (1, 1), 1, "UINT8", "BIPOLAR", False, "INT2", 4, True, None),  # float32
    (5, (3, 2), (2, 1), (1, 2), 1, "UINT8", "INT4", False, None, 3, True, None),  # float32
    (64, (3, 3), (1, 1), (1, 1), 1, "INT16", "BINARY", False, None, 4, False, None),  # declined
]
H, W = 9, 11


def conv_model(rng, c, k, s, d, pad, idt, wdt, xnor, odt, mh):
    hp, wp = H + 2 * pad, W + 2 * pad
    oh, ow = (hp - d[0] * (k[0] - 1) - 1) // s[0] + 1, (wp - d[1] * (k[1] - 1) - 1) // s[1] + 1
    mw = k[0] * k[1] * c
    nodes, value_info = [], []
    vi = lambda n, shape: helper.make_tensor_value_info(n, TensorProto.FLOAT, list(shape))  # noqa: E731
    x = "x"
    if pad:
        nodes.append(helper.make_node("FMPadding", [x], ["padded"], name="pad", ImgDim=[H, W],
                                      Padding=[pad] * 4, NumChannels=c, SIMD=c, inputDataType=idt,
                                      **FPGA))
        value_info.append(vi("padded", (1, hp, wp, c)))
        x = "padded"
    nodes.append(helper.make_node(
        "ConvolutionInputGenerator", [x], ["windows"], name="swg", ConvKernelDim=list(k),
        IFMChannels=c, IFMDim=[hp, wp], OFMDim=[oh, ow], SIMD=c, Stride=list(s),
        Dilation=list(d), inputDataType=idt, outputDataType=idt, **FPGA))
    value_info.append(vi("windows", (1, oh, ow, mw)))
    attrs = dict(MW=mw, MH=mh, SIMD=1, PE=1, inputDataType=idt, weightDataType=wdt,
                 outputDataType=odt or "INT32", accDataType="INT32", binaryXnorMode=int(xnor),
                 noActivation=int(odt is None), numInputVectors=[1, oh, ow])
    inputs = ["windows", "weights"]
    w = random_tensor(rng, wdt, (mw, mh))
    thr = None
    if odt is not None:
        steps = 1 if odt == "BIPOLAR" else DataType[odt].get_num_possible_values() - 1
        bound = mw * max(abs(DataType[idt].min()), DataType[idt].max())
        lo, hi = (0, mw) if xnor else (-bound, bound)
        thr = random_thresholds(rng, mh, steps, lo // 3, hi // 3)
        attrs["ActVal"] = 0 if odt == "BIPOLAR" else int(DataType[odt].min())
        inputs.append("thresholds")
    nodes.append(helper.make_node("MVAU", inputs, ["y"], name="mvau", **attrs, **FPGA))
    graph = helper.make_graph(nodes, "conv", [vi("x", (1, H, W, c))], [vi("y", (1, oh, ow, mh))],
                              value_info=value_info)
    model = ModelWrapper(qonnx_make_model(graph, producer_name="sim-test"))
    for name in ("x", "padded", "windows"):
        model.set_tensor_datatype(name, DataType[idt])
    model.set_tensor_datatype("y", DataType[odt or "INT32"])
    model.set_initializer("weights", w)
    model.set_tensor_datatype("weights", DataType[wdt])
    if thr is not None:
        model.set_initializer("thresholds", thr)
        model.set_tensor_datatype("thresholds", DataType["INT32"])
    x = random_tensor(rng, idt, (2, H, W, c))
    if idt == "INT2" and c == 8:  # a sign map: +-1 everywhere, zeros only from the padding
        x = rng.choice([-1.0, 1.0], size=x.shape).astype(np.float32)
    return model, x


@pytest.mark.parametrize("case", range(len(CASES)))
def test_fused_window_mvau_equals_unfused_and_finn(case, finn_build_dir, monkeypatch):
    from hw_gen.lowering.execute import finn_execute

    *params, fused, path = CASES[case]
    if path is not None:  # the sign-map XNOR route with its correction, or two bit planes
        monkeypatch.setattr(fused_module, "_mostly_signs", lambda x: path == "signs")
    model, x = conv_model(np.random.default_rng(case), *params)
    bundle = to_sim_bundle(model)
    calls = []
    original = kernels.FUSIONS[("ConvolutionInputGenerator", "MVAU")]

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append(result is not None)
        return result

    monkeypatch.setitem(kernels.FUSIONS, ("ConvolutionInputGenerator", "MVAU"),
                        kernels.FusionSpec(spy, original.packed_inputs, original.packs))
    got = sim.run(bundle, {"x": x})["y"]
    assert calls == [fused]
    unfused = sim.run(bundle, {"x": x}, return_all=True)
    assert "windows" in unfused and calls == [fused]  # return_all runs every node
    assert np.array_equal(got, unfused["y"])
    finn = finn_execute(model, x)["y"]
    assert np.array_equal(got, finn)


def test_sign_dot_corrects_zeros_and_minus_two_exactly():
    rng = np.random.default_rng(5)
    k, n = 150, 7
    a = rng.choice([-1, 1], size=(40, k))
    a[rng.random(a.shape) < 0.05] = 0
    a[rng.random(a.shape) < 0.03] = -2
    a[:10] = np.where(a[:10] == 0, 1, a[:10])  # rows without corrections too
    w = rng.choice([-1, 1], size=(k, n))
    planes = [pack_bit_rows((a > 0).astype(np.uint8)), pack_bit_rows((a == 0).astype(np.uint8)),
              pack_bit_rows((a == -2).astype(np.uint8))]
    ww = pack_bit_rows(((w.T + 1) // 2).astype(np.uint8))
    assert np.array_equal(packed_sign_dot(*planes, ww, k), a @ w)


@pytest.mark.parametrize("bits,signed,bipolar", [(1, False, True), (2, True, True), (2, False, False),
                                                 (3, True, False), (4, True, True), (4, False, True)])
def test_plane_dot_is_exact(bits, signed, bipolar):
    rng = np.random.default_rng(bits * 10 + signed)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    for k in (9, 64, 300, 2500):  # word loop and, beyond 2048 bits, the broadcast path
        a = rng.integers(lo, hi + 1, size=(23, k)).astype(np.int8)
        w_bits = rng.integers(0, 2, size=(k, 5)).astype(np.uint8)
        w = 2 * w_bits.astype(np.int64) - 1 if bipolar else w_bits.astype(np.int64)
        assert np.array_equal(plane_dot(a, bits, signed, w_bits, bipolar), a.astype(np.int64) @ w)
