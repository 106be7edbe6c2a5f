"""The fold search's per-layer settings: a large binary matrix-vector unit is folded to the
parallelism that fills its memory blocks, not the least parallel one, and URAM weights are
offered only where FINN can build them (Versal, or runtime-writable weights)."""

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_gen.boards import get_board
from hw_gen.hwmodel import layer_options
from hw_gen.hwmodel.estimate import RESOURCES, layer_estimate
from hw_gen.hwmodel.fold_search import choose_options

MW, MH, PIXELS = 4608, 512, 512  # ResNet-18's last 3x3 binary conv at 1/32 of 1024x512


def one_mvau(writable: bool) -> ModelWrapper:
    node = helper.make_node(
        "MVAU_hls", ["x", "w"], ["y"], domain="finn.custom_op.fpgadataflow.hls", name="MVAU_hls_0",
        MW=MW, MH=MH, PE=1, SIMD=6, inputDataType="BINARY", weightDataType="BINARY",
        outputDataType="UINT14", accDataType="UINT14", binaryXnorMode=1, noActivation=1,
        numInputVectors=[1, 16, 32], mem_mode="internal_decoupled", ram_style="ultra",
        runtime_writeable_weights=int(writable))
    graph = helper.make_graph(
        [node], "one_mvau", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 32, MW])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 32, MH])])
    model = ModelWrapper(helper.make_model(graph))
    model.set_initializer("w", np.ones((MW, MH), dtype=np.float32))
    model.set_tensor_datatype("w", DataType["BINARY"])
    return model


def test_the_least_parallel_folding_wastes_uram_and_the_search_fills_the_blocks():
    board = get_board("ZCU104")
    model = one_mvau(writable=True)
    node = model.graph.node[0]
    start = layer_estimate(node, model, board.part)
    # 6-bit words, MW*MH/6 = 393216 deep: 96 URAM blocks of 4096 words
    assert start["URAM"] == 96
    rows = {node.name: start}
    totals = {k: start[k] for k in RESOURCES}
    choose_options(model, board, rows, totals, budget_cycles=start["cycles"])
    inst = getCustomOp(node)
    assert inst.get_exp_cycles() <= start["cycles"]
    # 2359296 weight bits fill 8 URAM blocks (72 x 4096) exactly: no folding needs fewer,
    # and 72-bit words (PE * SIMD = 72) reach it
    assert inst.get_nodeattr("ram_style") == "ultra"
    assert inst.get_nodeattr("PE") * inst.get_nodeattr("SIMD") % 72 == 0
    assert rows[node.name]["URAM"] == 8 and totals["URAM"] == 8


@pytest.mark.parametrize("part_board, writable, ultra", [
    ("ZCU104", False, False), ("ZCU104", True, True), ("Pynq-Z2", True, False)])
def test_uram_weights_only_where_finn_can_build_them(part_board, writable, ultra):
    board = get_board(part_board)
    model = one_mvau(writable)
    node = model.graph.node[0]
    options = layer_options.memory_settings(node, getCustomOp(node), board.part,
                                            bool((board.resources or {}).get("URAM")))
    assert any(o["ram_style"] == "ultra" for o in options) == ultra
    assert any(o["ram_style"] == "block" for o in options)


def test_versal_parts_take_uram_weights_without_runtime_writes():
    model = one_mvau(writable=False)
    node = model.graph.node[0]
    options = layer_options.memory_settings(node, getCustomOp(node), "xcvc1902-vsva2197-2MP-e-S",
                                            True)
    assert any(o["ram_style"] == "ultra" for o in options)
