"""Folding: our layers fold by their own options; the parallelism rises with the target rate."""

import pytest
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.util.basic import qonnx_make_model

from hw_gen.errors import HwGenError
from hw_gen.folding import apply_folding, target_cycles


def upsample_graph(channels=12):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 10, channels])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 20, channels])
    node = helper.make_node(
        "FoldedUpsample_hls", ["x"], ["y"], domain="finn.custom_op.fpgadataflow.hls",
        backend="fpgadataflow", name="up", NumChannels=channels, PE=1, HI=8, WI=10, Factor=2,
        Mode="bilinear", inputDataType="BIPOLAR", outputDataType="INT6",
    )
    return ModelWrapper(qonnx_make_model(helper.make_graph([node], "g", [x], [y])))


def pe_for(fps):
    model = apply_folding(upsample_graph(), target_fps=fps, clk_ns=10.0)
    return getCustomOp(model.graph.node[0]).get_nodeattr("PE")


def test_our_layer_pe_rises_with_the_target_rate():
    pes = [pe_for(fps) for fps in (1_000, 10_000, 30_000, 60_000, 200_000)]
    assert pes == sorted(pes)
    assert pes[0] == 1 and pes[-1] == 12
    model = apply_folding(upsample_graph(), target_fps=30_000, clk_ns=10.0)
    inst = getCustomOp(model.graph.node[0])
    assert inst.get_exp_cycles() <= target_cycles(30_000, 10.0)


def test_no_target_means_least_parallelism():
    assert pe_for(None) == 1


def test_bad_targets_and_configs(tmp_path):
    with pytest.raises(HwGenError, match="must be positive"):
        apply_folding(upsample_graph(), target_fps=0, clk_ns=10.0)
    with pytest.raises(HwGenError, match="none.json: file not found"):
        apply_folding(upsample_graph(), None, 10.0, config=tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(HwGenError, match="not valid JSON"):
        apply_folding(upsample_graph(), None, 10.0, config=bad)


def mvau_graph(mw, mh=16):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, mw])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, mh])
    w = helper.make_tensor_value_info("w", TensorProto.FLOAT, [mw, mh])
    node = helper.make_node(
        "MVAU_hls", ["x", "w"], ["y"], domain="finn.custom_op.fpgadataflow.hls",
        backend="fpgadataflow", name="mvau", MW=mw, MH=mh, SIMD=1, PE=1,
        inputDataType="BINARY", weightDataType="BINARY", outputDataType="UINT16",
        binaryXnorMode=1, noActivation=1,
    )
    return ModelWrapper(qonnx_make_model(helper.make_graph([node], "g", [x], [y], value_info=[w])))


@pytest.mark.parametrize("mw, simd", [(1024, 1), (1152, 2), (3 * 1031, 1031), (2048 * 3, 6)])
def test_least_parallelism_still_meets_finns_mvau_simd_rule(mw, simd):
    """FINN's HLS MVAU refuses SIMD < MW / 1024; the smallest divisor of MW above it is taken."""
    model = apply_folding(mvau_graph(mw), target_fps=None, clk_ns=10.0)
    assert getCustomOp(model.graph.node[0]).get_nodeattr("SIMD") == simd


def test_finns_layers_are_not_held_back_by_ours_left_unfolded():
    """An upsampler of ours feeding an MVAU: the MVAU meets the target too (SetFolding's second
    pass relaxes to the slowest layer it sees, so ours must already be folded then)."""
    up = upsample_graph(channels=16)
    x = up.graph.input[0]
    y = helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 16, 20, 16])
    conv = helper.make_node(
        "MVAU_hls", ["y", "w"], ["z"], domain="finn.custom_op.fpgadataflow.hls",
        backend="fpgadataflow", name="mvau", MW=16, MH=16, SIMD=1, PE=1, numInputVectors=[1, 16, 20],
        inputDataType="INT6", weightDataType="BINARY", outputDataType="INT16", noActivation=1,
    )
    graph = helper.make_graph([up.graph.node[0], conv], "g", [x], [y],
                              value_info=[helper.make_tensor_value_info("w", TensorProto.FLOAT, [16, 16])])
    model = ModelWrapper(qonnx_make_model(graph))
    cycles = target_cycles(30_000, 10.0)
    model = apply_folding(model, target_fps=30_000, clk_ns=10.0)
    for node in model.graph.node:
        assert getCustomOp(node).get_exp_cycles() <= cycles, node.name
