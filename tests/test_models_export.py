"""QONNX export round trip (torch vs qonnx's executor), the FINN-ready rewrites, and FINN's
QONNX-to-FINN conversion of the exported demo network."""

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from torch import nn

from brevitas_models.errors import ModelError
from brevitas_models.export import check_export, export_qonnx
from brevitas_models.layers import BinaryConvBlock, Classifier, InputBlock, binary_conv2d, shared_quant_identity
from brevitas_models.quant import IntActPerTensor
from brevitas_models.nets import build


def _trained_a_little(model: nn.Module, size=(16, 16), steps: int = 3) -> nn.Module:
    """A few optimizer steps so that scales and BN statistics are not at their initial values."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    model.train()
    for _ in range(steps):
        loss = model(torch.rand(4, 3, *size)).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


class ZeroPaddedNet(nn.Module):
    """Stock-Brevitas style: padding= on the convs."""

    def __init__(self):
        super().__init__()
        self.stem = InputBlock(3, 4)
        self.body = BinaryConvBlock(4, 6, self.stem.act, padding="zero", stride=2)
        self.last = BinaryConvBlock(6, 4, self.body.act, padding="zero", return_quant_tensor=True)
        self.head = Classifier(4, 3)

    def forward(self, x):
        return self.head(self.last(self.body(self.stem(x))))


class ResidualNet(nn.Module):
    """A skip stream on one shared 4-bit quantizer: the add is an integer add."""

    def __init__(self):
        super().__init__()
        self.stem = InputBlock(3, 4)
        self.conv = binary_conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.branch = qnn.QuantIdentity(act_quant=IntActPerTensor)
        self.skip = shared_quant_identity(self.branch)
        self.head = nn.Conv2d(4, 3, 1)

    def forward(self, x):
        e = self.stem(x)
        return self.head(self.branch(self.bn(self.conv(e))) + self.skip(e))


@pytest.fixture(scope="module")
def demo_export(tmp_path_factory):
    model = _trained_a_little(build("demo", width=4), size=(32, 32))
    path = export_qonnx(model, torch.rand(1, 3, 32, 32), tmp_path_factory.mktemp("demo") / "demo.onnx")
    return model, path


def _op_types(path) -> list[str]:
    return [n.op_type for n in ModelWrapper(str(path)).graph.node]


def test_demo_export_matches_torch(demo_export):
    model, path = demo_export
    torch.manual_seed(1)
    result = check_export(model, path, torch.rand(2, 3, 32, 32))
    assert result.ok, result
    # the input quantizer and all eleven binary activations (the MBU's included), each integer
    # for integer
    assert len(result.integer_tensors_checked) == 12


def test_demo_export_is_finn_ready(demo_export):
    _, path = demo_export
    model = ModelWrapper(str(path))
    pads = model.get_nodes_by_op_type("Pad")
    assert len(pads) == 9 + 4  # the MBU pads each of its four branches
    for pad in pads:
        assert model.find_producer(pad.input[0]).op_type in ("BipolarQuant", "Concat", "Resize")
        assert model.get_initializer(pad.input[2]).tolist() == -1.0
    for node in model.get_nodes_by_op_type("BipolarQuant"):
        if model.get_initializer(node.input[0]) is None:
            assert model.get_initializer(node.input[1]).tolist() in (1.0, [1.0])


def test_zero_padded_net_export_matches_torch(tmp_path):
    model = _trained_a_little(ZeroPaddedNet())
    path = export_qonnx(model, torch.rand(1, 3, 16, 16), tmp_path / "zero.onnx")
    assert "Pad" not in _op_types(path)
    result = check_export(model, path, torch.rand(3, 3, 16, 16))
    assert result.ok, result


def test_shared_scale_residual_export_matches_torch(tmp_path):
    model = _trained_a_little(ResidualNet())
    path = export_qonnx(model, torch.rand(1, 3, 16, 16), tmp_path / "residual.onnx")
    assert _op_types(path).count("Quant") >= 3
    result = check_export(model, path, torch.rand(2, 3, 16, 16))
    assert result.ok, result
    assert len(result.integer_tensors_checked) == 4


def test_check_export_catches_a_model_that_differs(tmp_path):
    model = _trained_a_little(ZeroPaddedNet())
    path = export_qonnx(model, torch.rand(1, 3, 16, 16), tmp_path / "zero.onnx")
    with torch.no_grad():
        model.body.bn.bias.add_(torch.tensor([3.0, 0, 0, 0, 0, 0]))  # channel 0 now always +1
    result = check_export(model, path, torch.rand(2, 3, 16, 16))
    assert not result.ok
    assert len(result.integer_mismatches) >= 1


def test_finn_rewrites_change_no_value(demo_export, tmp_path):
    model, ready = demo_export
    x = torch.rand(1, 3, 32, 32)
    raw = export_qonnx(model, x, tmp_path / "raw.onnx", for_finn=False)
    raw_types, ready_types = _op_types(raw), _op_types(ready)
    # in the raw export the only Muls are the MBU's four branch gates
    assert raw_types.count("Mul") == 4 and ready_types.count("Mul") >= 10 + 4
    outputs = []
    for path in (raw, ready):
        wrapped = ModelWrapper(str(path))
        outputs.append(execute_onnx(wrapped, {wrapped.graph.input[0].name: x.numpy()})[wrapped.graph.output[0].name])
    assert np.array_equal(outputs[0], outputs[1])
    # the raw export pads with -scale, as the torch model does
    raw_model = ModelWrapper(str(raw))
    scale = float(model.stem.act.scale().detach())
    constants = [float(raw_model.get_initializer(p.input[2])) for p in raw_model.get_nodes_by_op_type("Pad")]
    assert len(constants) == 9 + 4 and all(c < 0 for c in constants)
    assert any(c == np.float32(-scale) for c in constants)


def test_dynamo_export_is_refused(tmp_path):
    with pytest.raises(ModelError, match="dynamo"):
        export_qonnx(build("demo", width=2), torch.rand(1, 3, 16, 16), tmp_path / "x.onnx", dynamo=True)


def test_demo_export_converts_to_finn(demo_export, tmp_path):
    from hw_gen.finn_adapter import init_finn

    init_finn(tmp_path / "finn")
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN

    model, path = demo_export
    converted = ModelWrapper(str(path)).transform(ConvertQONNXtoFINN())
    types = {n.op_type for n in converted.graph.node}
    assert "BipolarQuant" not in types and "Quant" not in types
    assert {"MultiThreshold", "Conv", "Pad", "Resize", "Concat"} <= types
    x = torch.rand(1, 3, 32, 32)
    out = execute_onnx(converted, {converted.graph.input[0].name: x.numpy()})[converted.graph.output[0].name]
    with torch.no_grad():
        expected = model(x).numpy()
    assert np.array_equal(out.argmax(1), expected.argmax(1))
    assert np.abs(out - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())
