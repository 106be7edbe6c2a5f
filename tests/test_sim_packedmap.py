"""One-bit maps passed between layers packed (sim.packedmap): packing against numpy's
packbits and the executor's wrap, and a chain of binary convolutions (padding, fork,
concatenation, a 1x1 integer layer) whose packed run equals the unpacked one and FINN's."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model

import sim
import sim.graph as graph
import sim.kernels as kernels
from hw_gen.bundle import to_sim_bundle
from sim.datatypes import wrap
from sim.bundle import Node
from sim.kernels.matrix import threshold_bits, threshold_output
from sim.bitconv import pack_pixels
from sim.packedmap import PackedMap, pack_channel_bits
from test_sim_kernels import random_thresholds

FPGA = dict(domain="finn.custom_op.fpgadataflow", backend="fpgadataflow")


@pytest.mark.parametrize("channels", [1, 7, 8, 13, 16])
@pytest.mark.parametrize("bipolar", [False, True])
def test_pack_and_unpack_round_trip(channels, bipolar):
    rng = np.random.default_rng(channels)
    bits = rng.integers(0, 2, (2, 3, 5, channels))
    values = (2 * bits - 1 if bipolar else bits).astype(np.int8 if bipolar else np.uint8)
    packed = PackedMap(pack_pixels(values > 0), channels, bipolar)
    assert packed.shape == values.shape and packed.dtype == values.dtype
    assert np.array_equal(packed.bits, np.packbits(bits.astype(np.uint8), axis=-1))
    assert np.array_equal(packed.unpack(), values)


@pytest.mark.parametrize("channels", [3, 8, 16, 21])
def test_packing_bits_of_rows_and_of_channels_is_packbits(channels):
    bits = np.random.default_rng(channels).integers(0, 2, (40, channels)).astype(np.uint8)
    want = np.packbits(bits, axis=-1)
    assert np.array_equal(pack_pixels(bits), want)
    assert np.array_equal(pack_channel_bits(np.ascontiguousarray(bits.T)), want)


def _node(op, out_attr, declared, act):
    return Node("n", op, f"{op}_hls", "", True, [], [],
                {"ActVal": act, "outputDataType": out_attr}, [declared])


@pytest.mark.parametrize("op,out_attr,declared,act,steps", [
    ("MVAU", "BIPOLAR", "BIPOLAR", 5, 1),          # ActVal ignored
    ("MVAU", "BINARY", "BINARY", 0, 1),
    ("MVAU", "BINARY", "BINARY", 3, 1),            # odd ActVal flips the bit
    ("Thresholding", "BIPOLAR", "BIPOLAR", -1, 1),
    ("Thresholding", "BINARY", "BINARY", 0, 3),    # several thresholds: the count's parity
    ("Thresholding", "UINT2", "BIPOLAR", 0, 3),    # declared unlike the attribute
    ("MVAU", "BIPOLAR", "BINARY", 0, 1),
])
@pytest.mark.parametrize("channel_axis", [-1, 0])
def test_threshold_bits_are_the_bits_the_wrap_keeps(op, out_attr, declared, act, steps,
                                                    channel_axis):
    """The one-bit result against the wrap (sim.datatypes) of the thresholded values."""
    rng = np.random.default_rng(steps + act)
    x = rng.integers(-40, 40, (30, 6)).astype(np.int32)
    thr = np.sort(rng.integers(-30, 30, (6, steps)), axis=1).astype(np.float32)
    node = _node(op, out_attr, declared, act)
    want = wrap(threshold_output(node, x, thr), declared) > 0
    xs = x if channel_axis == -1 else np.ascontiguousarray(x.T)
    got = threshold_bits(node, xs, thr, channel_axis)
    assert got.dtype == np.uint8
    assert np.array_equal(got if channel_axis == -1 else got.T, want.astype(np.uint8))


def test_packed_map_refuses_bits_that_do_not_hold_its_channels():
    with pytest.raises(ValueError, match="do not hold 9 channels"):
        PackedMap(np.zeros((1, 2, 2, 1), np.uint8), 9, False)


H, W = 6, 8


def _conv(rng, nodes, model_types, inits, name, x, c, mh, odt):
    """FMPadding (1) + 3x3 window + XNOR MVAU ``x`` (1, H, W, c) -> ``name`` (1, H, W, mh)."""
    nodes.append(helper.make_node("FMPadding", [x], [f"{name}_pad"], name=f"{name}_pad",
                                  ImgDim=[H, W], Padding=[1, 1, 1, 1], NumChannels=c, SIMD=c,
                                  inputDataType="BINARY", **FPGA))
    nodes.append(helper.make_node(
        "ConvolutionInputGenerator", [f"{name}_pad"], [f"{name}_win"], name=f"{name}_swg",
        ConvKernelDim=[3, 3], IFMChannels=c, IFMDim=[H + 2, W + 2], OFMDim=[H, W], SIMD=c,
        Stride=[1, 1], Dilation=[1, 1], inputDataType="BINARY", outputDataType="BINARY", **FPGA))
    mw = 9 * c
    inputs = [f"{name}_win", f"{name}_w"]
    inits[f"{name}_w"] = (rng.integers(0, 2, (mw, mh)).astype(np.float32), "BINARY")
    attrs = dict(MW=mw, MH=mh, SIMD=1, PE=1, inputDataType="BINARY", weightDataType="BINARY",
                 outputDataType=odt, accDataType="INT32", binaryXnorMode=1,
                 noActivation=int(odt == "INT32"), numInputVectors=[1, H, W])
    if odt != "INT32":
        steps = 1 if odt in ("BINARY", "BIPOLAR") else DataType[odt].get_num_possible_values() - 1
        inits[f"{name}_t"] = (random_thresholds(rng, mh, steps, mw // 3, 2 * mw // 3), "INT32")
        attrs["ActVal"] = 0 if odt == "BIPOLAR" else int(DataType[odt].min())
        inputs.append(f"{name}_t")
    nodes.append(helper.make_node("MVAU", inputs, [name], name=name, **attrs, **FPGA))
    model_types.update({f"{name}_pad": ("BINARY", (1, H + 2, W + 2, c)),
                        f"{name}_win": ("BINARY", (1, H, W, mw)), name: (odt, (1, H, W, mh))})


def chain_model(rng, c1: int, c2: int):
    """x -> conv1 -> fork -> conv2 -> concat(conv1, conv2) -> conv3 (-1/+1) -> 1x1 integer
    layer."""
    nodes, types, inits = [], {}, {}
    _conv(rng, nodes, types, inits, "c1", "x", 8, c1, "BINARY")
    nodes.append(helper.make_node("DuplicateStreams", ["c1"], ["c1a", "c1b"], name="fork",
                                  NumChannels=c1, NumOutputStreams=2, PE=1, inputDataType="BINARY",
                                  numInputVectors=[1, H, W], **FPGA))
    types.update({"c1a": ("BINARY", (1, H, W, c1)), "c1b": ("BINARY", (1, H, W, c1))})
    _conv(rng, nodes, types, inits, "c2", "c1a", c1, c2, "BINARY")
    nodes.append(helper.make_node("StreamingConcat", ["c1b", "c2"], ["cat"], name="cat",
                                  ChannelsPerStream=[c1, c2], SIMD=1,
                                  inputDataTypes=["BINARY", "BINARY"],
                                  numInputVectors=[1, H, W], **FPGA))
    types["cat"] = ("BINARY", (1, H, W, c1 + c2))
    _conv(rng, nodes, types, inits, "c3", "cat", c1 + c2, 5, "BIPOLAR")
    # a 1x1 layer of integer weights on the -1/+1 map: the plain MVAU reads it packed
    inits["c4_w"] = (rng.integers(-8, 8, (5, 3)).astype(np.float32), "INT4")
    nodes.append(helper.make_node(
        "MVAU", ["c3", "c4_w"], ["c4"], name="c4", MW=5, MH=3, SIMD=1, PE=1,
        inputDataType="BIPOLAR", weightDataType="INT4", outputDataType="INT32",
        accDataType="INT32", binaryXnorMode=0, noActivation=1, numInputVectors=[1, H, W], **FPGA))
    types["c4"] = ("INT32", (1, H, W, 3))
    vi = lambda n, shape: helper.make_tensor_value_info(n, TensorProto.FLOAT, list(shape))  # noqa: E731
    outputs = {"c4"}
    graph_ = helper.make_graph(nodes, "chain", [vi("x", (1, H, W, 8))], [vi("c4", (1, H, W, 3))],
                               value_info=[vi(n, shape) for n, (_, shape) in types.items()
                                           if n not in outputs])
    model = ModelWrapper(qonnx_make_model(graph_, producer_name="sim-test"))
    for name, (value, dt) in inits.items():
        model.set_initializer(name, value)
        model.set_tensor_datatype(name, DataType[dt])
    model.set_tensor_datatype("x", DataType["BINARY"])
    for name, (dt, _) in types.items():
        model.set_tensor_datatype(name, DataType[dt])
    x = rng.integers(0, 2, (2, H, W, 8)).astype(np.float32)
    return model, x


@pytest.mark.parametrize("c1,c2", [(16, 8), (13, 8)])
def test_packed_chain_equals_unpacked_run_and_finn(c1, c2, finn_build_dir, monkeypatch):
    from hw_gen.lowering.execute import finn_execute

    model, x = chain_model(np.random.default_rng(c1), c1, c2)
    bundle = to_sim_bundle(model)
    assert graph._packed_tensors(bundle, graph._fusable(bundle)) == {"c1", "c2", "c3"}
    key = ("ConvolutionInputGenerator", "MVAU")
    original = kernels.FUSIONS[key]
    seen = {}

    def spy(window, mvau, window_inputs, rest, **kwargs):
        seen[mvau.name] = (isinstance(window_inputs[0], PackedMap), kwargs.get("packed", False))
        return original(window, mvau, window_inputs, rest, **kwargs)

    monkeypatch.setitem(kernels.FUSIONS, key, kernels.FusionSpec(spy, True, True))
    got = sim.run(bundle, {"x": x})["c4"]
    # the convolutions are asked to pack; c2 reads c1 packed through the fork and the padding;
    # the concatenation stays packed where c1's channels fill whole bytes
    assert seen == {"c1": (False, True), "c2": (True, True), "c3": (c1 % 8 == 0, True)}
    unpacked = sim.run(bundle, {"x": x}, return_all=True)
    assert np.array_equal(got, unpacked["c4"])
    assert np.array_equal(got, finn_execute(model, x)["c4"])
