"""Lowering stock and feature networks through FINN, compared with torch."""

import numpy as np
import pytest
import torch
from brevitas import nn as qnn
from brevitas.export import export_qonnx
from brevitas.quant import (
    Int8WeightPerTensorFloat,
    Int16Bias,
    SignedBinaryActPerTensorConst,
    Uint8ActPerTensorFloat,
)
from qonnx.core.modelwrapper import ModelWrapper
from torch import nn

from brevitas_models.stock_nets import CNVStyle, TFCStyle
from hw_gen.errors import DataTypeCheckError, HwGenError, UnmappedNodesError
from hw_gen.folding import is_hw
from hw_gen.lowering import lower
from hw_gen.lowering.pipeline import step_path
from hw_gen.lowering.widths import check_datatypes, minimize_widths
from hw_gen.verify import compare_finn_with_torch
from lowering_nets import FloatInTheMiddle, PaddedNet, SkipNet, binary_block, pixels, randomize_bn


def export(model, x, path):
    export_qonnx(model, x[:1], str(path), dynamo=False)
    return path


def lowered_and_compared(model, x, tmp_path, **kwargs):
    onnx_path = export(model, x, tmp_path / "model.onnx")
    result = lower(onnx_path, tmp_path / "out", **kwargs)
    before_specialize = ModelWrapper(str(step_path(tmp_path / "out", "widths")))
    return result, compare_finn_with_torch(before_specialize, model, x.numpy())


def test_cnv_style_network_lowers_fully_and_matches(tmp_path):
    torch.manual_seed(0)
    model = CNVStyle(width=8).eval()
    result, cmp = lowered_and_compared(model, pixels((2, 3, 32, 32)), tmp_path)
    assert cmp.passed, cmp
    assert cmp.labels_equal
    ops = {n.op_type for n in result.model.graph.node if is_hw(n)}
    assert {"MVAU_hls", "Pool_hls", "LabelSelect_hls"} <= ops
    assert (tmp_path / "out" / "dataflow.onnx").exists()
    assert len(result.rows) == len([n for n in result.model.graph.node if is_hw(n)])


def test_tfc_style_network_lowers_fully_and_matches(tmp_path):
    torch.manual_seed(0)
    model = TFCStyle(width=32).eval()
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    result, cmp = lowered_and_compared(model, x, tmp_path)
    assert cmp.passed, cmp
    # the float input binarization stays in software, in front of the accelerator
    assert result.model.graph.node[1].op_type == "MultiThreshold"


@pytest.mark.parametrize("pad", ["zero", "minus1"])
def test_padded_binary_convolutions_are_exact(tmp_path, pad):
    model = randomize_bn(PaddedNet(pad), seed=3)
    result, cmp = lowered_and_compared(model, pixels((2, 3, 9, 11)), tmp_path)
    assert cmp.passed and cmp.labels_equal, cmp
    mvaus = [n for n in result.model.graph.node if n.op_type == "MVAU_hls"]
    from qonnx.custom_op.registry import getCustomOp

    padded_conv = getCustomOp(mvaus[1])
    # zero padding needs a real zero: INT2 inputs, not XNOR; -1 padding stays XNOR
    assert padded_conv.get_nodeattr("binaryXnorMode") == (0 if pad == "zero" else 1)
    if pad == "zero":
        assert padded_conv.get_nodeattr("inputDataType") == "INT2"
        assert padded_conv.get_nodeattr("weightDataType") == "BIPOLAR"


def test_stock_finn_gets_zero_padded_binary_convs_wrong(tmp_path):
    """The defect our INT2 route exists for: FINN's own recipe silently pads -1."""
    from finn.builder.build_dataflow_config import DataflowBuildConfig
    import finn.builder.build_dataflow_steps as steps

    from hw_gen.lowering.execute import finn_execute
    from hw_gen.verify import torch_reference

    torch.manual_seed(3)  # the weights: independent of what ran before in this process
    model = randomize_bn(PaddedNet("zero"), seed=3)
    x = pixels((2, 3, 9, 11))
    m = ModelWrapper(str(export(model, x, tmp_path / "m.onnx")))
    cfg = DataflowBuildConfig(output_dir=str(tmp_path / "o"), synth_clk_period_ns=10,
                              generate_outputs=[], verify_steps=[])
    for step in (steps.step_qonnx_to_finn, steps.step_tidy_up, steps.step_streamline):
        m = step(m, cfg)
    got = finn_execute(m, x.numpy())[m.graph.output[0].name]
    ref = torch_reference(model, x.numpy())
    wrong = np.abs(got.reshape(ref.shape) - ref).max(axis=1) > 1e-4
    assert wrong.any()
    interior = wrong[:, 1:-1, 1:-1]
    assert not interior.any(), "only the border (where padding is read) is wrong"


@pytest.mark.parametrize("join", ["add", "concat"])
def test_skips_and_nearest_upsampling_map_to_hardware(tmp_path, join):
    model = randomize_bn(SkipNet(join), seed=5)
    result, cmp = lowered_and_compared(model, pixels((2, 3, 8, 10)), tmp_path)
    assert cmp.passed and cmp.labels_equal, cmp
    ops = [n.op_type for n in result.model.graph.node]
    assert "UpsampleNearestNeighbour_hls" in ops
    assert ("ElementwiseAdd_hls" if join == "add" else "StreamingConcat_hls") in ops


def test_type_check_catches_unwidened_xnor_accumulators(tmp_path):
    model = CNVStyle(width=8).eval()
    onnx_path = export(model, pixels((1, 3, 32, 32)), tmp_path / "m.onnx")
    lower(onnx_path, tmp_path / "out", stop_after="to_hw")
    hw = ModelWrapper(str(step_path(tmp_path / "out", "to_hw")))
    with pytest.raises(DataTypeCheckError, match=r"MVAU_\d+: accumulator range \[0, 144\]"):
        check_datatypes(minimize_widths(hw, widen_xnor=False))
    assert check_datatypes(minimize_widths(hw)) > 0


def test_unmappable_node_is_named(tmp_path):
    model = randomize_bn(FloatInTheMiddle(), seed=0)
    onnx_path = export(model, pixels((1, 3, 8, 8)), tmp_path / "m.onnx")
    with pytest.raises(UnmappedNodesError, match="Sigmoid"):
        lower(onnx_path, tmp_path / "out")


def test_stop_after_and_resume(tmp_path):
    model = randomize_bn(PaddedNet("minus1"), seed=1)
    onnx_path = export(model, pixels((1, 3, 8, 8)), tmp_path / "m.onnx")
    first = lower(onnx_path, tmp_path / "out", stop_after="streamline")
    assert not first.complete and first.run.last_step == "streamline"
    second = lower(onnx_path, tmp_path / "out", resume=True)
    assert second.complete
    assert [r.name for r in second.run.records][0] == "output_interface"


def test_bad_inputs_give_one_line_errors(tmp_path):
    with pytest.raises(HwGenError, match="model file not found"):
        lower(tmp_path / "missing.onnx", tmp_path / "out")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(HwGenError, match="not a readable ONNX model"):
        lower(bad, tmp_path / "out")
    with pytest.raises(HwGenError, match="unknown board 'Nope'; known boards: .*Pynq-Z2"):
        lower(bad, tmp_path / "out", board="Nope")


class QuantBiasClassifierNet(nn.Module):
    """A binary block, then a classifier with 8-bit weights and a 16-bit quantized bias (as
    Brevitas examples end), exported with plain ``brevitas.export.export_qonnx``."""

    def __init__(self, channels: int = 6, classes: int = 4) -> None:
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat)
        self.block = binary_block(3, channels)
        self.act = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst,
                                     return_quant_tensor=True)
        self.cls = qnn.QuantConv2d(channels, classes, 1, bias=True,
                                   weight_quant=Int8WeightPerTensorFloat, bias_quant=Int16Bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls(self.act(self.block(self.inp(x))))


def test_raw_export_with_a_quantized_bias_lowers(tmp_path):
    """Brevitas exports the bias Quant with a 0-d zero point, on which FINN's QONNX conversion
    failed ('cannot reshape array of size 1'); the cleanup step reshapes it."""
    torch.manual_seed(4)
    model = randomize_bn(QuantBiasClassifierNet(), seed=4)
    with torch.no_grad():
        model.cls.bias.copy_(torch.randn(4) * 3)
    result, cmp = lowered_and_compared(model, pixels((2, 3, 7, 9), seed=4), tmp_path)
    assert cmp.passed and cmp.labels_equal, cmp
    assert any(n.op_type.startswith("MVAU") for n in result.model.graph.node)
