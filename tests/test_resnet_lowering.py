"""The paper-scale network through hw-gen, exactly: the Bi-Real units (8-bit stem, max pool,
integer residual adds, strided units with binary 1x1 shortcuts) and the classifier whose
integer bias moves before its scale so that FINN's LabelSelect runs in hardware."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from brevitas_models.configs import build_config
from brevitas_models.export import export_qonnx
from brevitas_models.layers import Classifier
from brevitas_models.resnet import BiRealUnit, RSign, Stem
from brevitas_models.quant import IntActPerTensor
from brevitas import nn as qnn
from hw_gen.build import build
from hw_gen.lowering import lower
from hw_gen.verify import compare_finn_with_torch
from lowering_nets import pixels, randomize_bn
from test_mbu_network import randomized


class ResidualNet(nn.Module):
    """Stem, an unstrided and a strided unit, a sign, the 8-bit classifier with its bias."""

    def __init__(self) -> None:
        super().__init__()
        q1 = qnn.QuantIdentity(act_quant=IntActPerTensor)
        q2 = qnn.QuantIdentity(act_quant=IntActPerTensor)
        self.q1, self.q2 = q1, q2
        self.stem = Stem(4, q1)
        self.unit1 = BiRealUnit(4, 4, 1, q1)
        self.unit2 = BiRealUnit(4, 8, 2, q2)
        self.sign = RSign(8, return_quant_tensor=True)
        self.head = Classifier(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.sign(self.unit2(self.unit1(self.stem(x)))))


def random_residual_net(seed: int) -> ResidualNet:
    torch.manual_seed(seed)
    net = randomize_bn(ResidualNet(), seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, RSign):
                m.shift.uniform_(-2.0, 2.0)
        net.head.conv.bias.uniform_(-3.0, 3.0)
    return net.eval()


def test_residual_units_and_labels_lower_exactly(tmp_path):
    net = random_residual_net(2)
    path = export_qonnx(net, pixels((1, 3, 16, 16)), tmp_path / "res.onnx")
    x = pixels((3, 3, 16, 16), seed=5).numpy()
    result = lower(path, tmp_path / "out", stop_after="widths")
    ops = [n.op_type for n in result.model.graph.node]
    assert ops.count("ElementwiseAdd") == 3  # two residual adds and the class bias
    assert "LabelSelect" in ops and any("Pool" in op for op in ops)
    facts = json.loads((tmp_path / "out" / "steps" / "context.json").read_text())
    assert facts["labels_in_hardware"] and facts["class_bias_before_scale"]
    comparison = compare_finn_with_torch(result.model, net, x)
    assert comparison.passed and comparison.labels_equal, comparison


def test_class_bias_in_hardware_is_brevitas_integer_bias(tmp_path):
    from qonnx.core.modelwrapper import ModelWrapper
    from hw_gen.lowering.pipeline import step_path

    net = random_residual_net(3)
    path = export_qonnx(net, pixels((1, 3, 16, 16)), tmp_path / "res.onnx")
    lower(path, tmp_path / "out", stop_after="output_interface")
    model = ModelWrapper(str(step_path(tmp_path / "out", "output_interface")))
    (add,) = [n for n in model.graph.node if n.op_type == "Add"
              and model.get_initializer(n.input[1]) is not None
              and model.get_tensor_datatype(n.input[1]).is_integer()]
    got = model.get_initializer(add.input[1]).reshape(-1)
    expected = net.head.conv.quant_bias().int().reshape(-1).numpy()
    assert np.array_equal(got.astype(np.int64), expected)


@pytest.mark.slow
def test_tiny_paper_network_builds_exactly(tmp_path):
    """seg-r18-tiny at 64x64 (the smallest input it takes): hw-gen build to our layers' C
    simulation passes (sim == FINN's execution, C++ == sim), FINN's execution == torch with
    the labels from LabelSelect."""
    net = randomized(build_config("seg-r18-tiny"), 3)
    path = export_qonnx(net, pixels((1, 3, 64, 64)), tmp_path / "tiny.onnx")
    x = pixels((2, 3, 64, 64), seed=4).numpy()
    np.save(tmp_path / "x.npy", x)
    result = build(path, tmp_path / "build", input_npy=tmp_path / "x.npy", stop_after="csim_ours")
    assert result.passed, result.summary()
    facts = result.step("lower").extra["facts"]
    assert facts["labels_in_hardware"]
    from qonnx.core.modelwrapper import ModelWrapper
    from hw_gen.lowering.pipeline import step_path
    lowered = ModelWrapper(str(step_path(result.out_dir, "widths")))
    comparison = compare_finn_with_torch(lowered, net, x)
    assert comparison.passed and comparison.labels_equal, comparison
