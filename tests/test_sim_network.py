"""A tiny Brevitas binary network through FINN's standard flow, executed by FINN and by sim:
every tensor of the hardware-layer graph equal; then the specialized graph (``_hls``/``_rtl``
layers, width converters, FIFOs) inside a dataflow partition, which FINN cannot execute in
Python, run by sim and compared with FINN's result before specialization."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sim
from hw_gen.bundle import write_bundle

FPGA_PART = "xc7z020clg400-1"
IN_SHAPE = (1, 3, 16, 16)
# MVAU (PE, SIMD) and window generator SIMD: stream widths differ, so width converters appear
FOLDING = {"MVAU_0": (4, 3), "MVAU_1": (8, 8), "MVAU_2": (2, 16), "MVAU_3": (5, 4),
           "ConvolutionInputGenerator_0": (None, 3), "ConvolutionInputGenerator_1": (None, 8),
           "ConvolutionInputGenerator_3": (None, 16)}


def _brevitas_net():
    import brevitas.nn as qnn
    import torch
    from brevitas.quant import (
        SignedBinaryActPerTensorConst,
        SignedBinaryWeightPerTensorConst,
        Uint8ActPerTensorFloat,
    )
    from torch import nn

    def conv(cin, cout, k):
        return qnn.QuantConv2d(cin, cout, k, bias=False, weight_quant=SignedBinaryWeightPerTensorConst)

    def sign():
        return qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)

    torch.manual_seed(0)
    net = nn.Sequential(
        qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True),
        conv(3, 8, 3), nn.BatchNorm2d(8), sign(),
        conv(8, 16, 3), nn.BatchNorm2d(16), sign(), nn.MaxPool2d(2),
        conv(16, 16, 3), nn.BatchNorm2d(16), sign(),
        conv(16, 5, 1),
    )
    for bn in (m for m in net if isinstance(m, nn.BatchNorm2d)):
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-2, 2)
        bn.running_mean.uniform_(-3, 3)
        bn.running_var.uniform_(0.5, 4)
    net.train()
    with torch.no_grad():  # calibrate the input quantizer
        for _ in range(3):
            net(torch.rand(4, *IN_SHAPE[1:]) * 255)
    return net.eval()


def _to_hw_layers(onnx_path: Path):
    import finn.transformation.streamline.absorb as absorb
    from finn.transformation.fpgadataflow.convert_to_hw.binary_matrix_vector_activation import (
        InferBinaryMatrixVectorActivation,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
    from finn.transformation.fpgadataflow.convert_to_hw.pool import InferPool
    from finn.transformation.fpgadataflow.convert_to_hw.quantized_matrix_vector_activation import (
        InferQuantizedMatrixVectorActivation,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.thresholding import InferThresholdingLayer
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN
    from finn.transformation.streamline import Streamline
    from finn.transformation.streamline.reorder import MakeMaxPoolNHWC, MoveScalarLinearPastInvariants
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.bipolar_to_xnor import ConvertBipolarMatMulToXnorPopcount
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import (
        GiveReadableTensorNames,
        GiveUniqueNodeNames,
        RemoveStaticGraphInputs,
        RemoveUnusedTensors,
    )
    from qonnx.transformation.infer_data_layouts import InferDataLayouts
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul
    from qonnx.util.cleanup import cleanup_model

    steps = [
        ConvertQONNXtoFINN(), InferShapes(), FoldConstants(), GiveUniqueNodeNames(),
        GiveReadableTensorNames(), InferDataTypes(), RemoveStaticGraphInputs(),
        MoveScalarLinearPastInvariants(), Streamline(), LowerConvsToMatMul(), MakeMaxPoolNHWC(),
        absorb.AbsorbTransposeIntoMultiThreshold(), ConvertBipolarMatMulToXnorPopcount(),
        Streamline(), InferDataLayouts(), RemoveUnusedTensors(),
        InferBinaryMatrixVectorActivation(), InferQuantizedMatrixVectorActivation(),
        InferThresholdingLayer(), InferPool(), InferConvInpGen(),
        absorb.AbsorbConsecutiveTransposes(), InferShapes(), InferDataTypes(),
        GiveUniqueNodeNames(), GiveReadableTensorNames(),
    ]
    model = cleanup_model(ModelWrapper(str(onnx_path)))
    for step in steps:
        model = model.transform(step)
    return model


@pytest.fixture(scope="module")
def hw_graph(finn_build_dir, tmp_path_factory):
    import torch
    from brevitas.export import export_qonnx

    folder = tmp_path_factory.mktemp("net")
    net = _brevitas_net()
    # TorchScript export (dynamo=False): seconds instead of tens of seconds
    export_qonnx(net, torch.rand(IN_SHAPE), export_path=str(folder / "net.onnx"), dynamo=False)
    model = _to_hw_layers(folder / "net.onnx")
    rng = np.random.default_rng(42)
    frames = (rng.random((3,) + IN_SHAPE[1:]) * 255).astype(np.float32)
    return model, frames, folder


def test_hw_graph_is_all_hardware_layers(hw_graph):
    model, _, _ = hw_graph
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MVAU") == 4 and "Pool" in ops and "Thresholding" in ops
    assert set(ops) <= {"Transpose", "Thresholding", "ConvolutionInputGenerator", "MVAU", "Pool",
                        "Mul", "Add"}, ops


def test_every_tensor_equals_finn(hw_graph, tmp_path):
    from finn.core.onnx_exec import execute_onnx

    model, frames, _ = hw_graph
    bundle = sim.load_bundle(write_bundle(model, tmp_path / "hw")[0])
    name = model.graph.input[0].name
    for frame in frames:
        feed = {name: frame[None]}
        expected = execute_onnx(model, feed, return_full_exec_context=True)
        got = sim.run(bundle, feed, return_all=True)
        compared = 0
        for tensor, value in got.items():
            assert np.array_equal(value, expected[tensor]), tensor
            compared += 1
        assert compared == len(model.graph.node) + 1


def test_batch_equals_frame_by_frame(hw_graph, tmp_path):
    model, frames, _ = hw_graph
    bundle = sim.load_bundle(write_bundle(model, tmp_path / "hw")[0])
    name, out = model.graph.input[0].name, model.graph.output[0].name
    batched = sim.run(bundle, {name: frames})[out]
    single = np.concatenate([sim.run(bundle, {name: f[None]})[out] for f in frames])
    assert batched.shape[0] == len(frames)
    assert np.array_equal(batched, single)


def test_specialized_partition_equals_finn_before_specialization(hw_graph, tmp_path):
    from finn.core.onnx_exec import execute_onnx
    from finn.transformation.fpgadataflow.create_dataflow_partition import CreateDataflowPartition
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.insert_fifo import InsertFIFO
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.transformation.general import GiveUniqueNodeNames

    model, frames, _ = hw_graph
    model = ModelWrapper(model.model.SerializeToString())
    for node in model.graph.node:
        if node.name in FOLDING:
            pe, simd = FOLDING[node.name]
            inst = getCustomOp(node)
            if pe:
                inst.set_nodeattr("PE", pe)
            inst.set_nodeattr("SIMD", simd)
    parent = model.transform(CreateDataflowPartition(partition_model_dir=str(tmp_path / "parts")))
    sdp = next(n for n in parent.graph.node if n.op_type == "StreamingDataflowPartition")
    child_path = getCustomOp(sdp).get_nodeattr("model")
    child = ModelWrapper(child_path)
    for step in (SpecializeLayers(FPGA_PART), InsertDWC(), SpecializeLayers(FPGA_PART),
                 InsertFIFO(create_shallow_fifos=True), SpecializeLayers(FPGA_PART), GiveUniqueNodeNames()):
        child = child.transform(step)
    child.save(child_path)
    impl = {n.op_type for n in child.graph.node}
    assert impl >= {"MVAU_hls", "ConvolutionInputGenerator_rtl", "StreamingFIFO_rtl",
                    "StreamingDataWidthConverter_rtl", "Pool_hls"}, impl
    assert all(op.endswith(("_hls", "_rtl")) for op in impl)

    name, out = model.graph.input[0].name, model.graph.output[0].name
    child_bundle = sim.load_bundle(write_bundle(child, tmp_path / "child")[0])
    parent_bundle = sim.load_bundle(write_bundle(parent, tmp_path / "parent")[0])
    assert {n.partition for n in parent_bundle.nodes if n.hw} == {sdp.name}
    for frame in frames:
        expected = execute_onnx(model, {name: frame[None]}, return_full_exec_context=True)
        got = sim.run(child_bundle, {child.graph.input[0].name: expected[sdp.input[0]]})
        assert np.array_equal(got[child.graph.output[0].name], expected[sdp.output[0]])
        got = sim.run(parent_bundle, {name: frame[None]})
        assert np.array_equal(got[out], expected[out])
