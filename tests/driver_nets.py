"""Networks, builds and deploy packages shared by the driver tests (main environment)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from brevitas import nn as qnn
from brevitas.export import export_qonnx
from brevitas.quant import SignedBinaryWeightPerTensorConst, Uint8ActPerTensorFloat
from torch import nn

from lowering_nets import PaddedNet, pixels, randomize_bn


class TwoBitNet(nn.Module):
    """8-bit input, binary-weight convs with 2-bit unsigned activations, a 1x1 classifier."""

    def __init__(self, channels: int = 8, classes: int = 5) -> None:
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat)
        self.c0 = qnn.QuantConv2d(3, channels, 3, padding=1, bias=False,
                                  weight_quant=SignedBinaryWeightPerTensorConst)
        self.b0 = nn.BatchNorm2d(channels)
        self.a0 = qnn.QuantReLU(bit_width=2)
        self.c1 = qnn.QuantConv2d(channels, channels, 3, padding=1, bias=False,
                                  weight_quant=SignedBinaryWeightPerTensorConst)
        self.b1 = nn.BatchNorm2d(channels)
        self.a1 = qnn.QuantReLU(bit_width=2)
        self.cls = qnn.QuantConv2d(channels, classes, 1, bias=False,
                                   weight_quant=SignedBinaryWeightPerTensorConst)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.a0(self.b0(self.c0(self.inp(x))))
        return self.cls(self.a1(self.b1(self.c1(x))))


def export(net: nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    export_qonnx(net.eval(), pixels(shape), str(path), dynamo=False)
    return path


def build_and_deploy(model: Path, work: Path, **build_kw) -> Path:
    """``hw-gen build`` up to the final graph (step ``names``: what deploy reads), then
    ``hw-gen deploy``; returns the package folder."""
    from hw_gen.build import build
    from hw_gen.deploy.package import make_package

    result = build(model, work / "build", stop_after="names", **build_kw)
    assert result.passed, result.summary()
    return make_package(work / "build", work / "pkg")


def qonnx_logits(model: Path, images: np.ndarray) -> np.ndarray:
    """The exported model run by qonnx's executor on pixels k/255 (NCHW float)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    m = cleanup_model(ModelWrapper(str(model)))
    x = (images.astype(np.float32) / 255.0).transpose(0, 3, 1, 2)
    name, out = m.graph.input[0].name, m.graph.output[0].name
    return np.concatenate([execute_onnx(m, {name: x[i:i + 1]})[out] for i in range(len(x))])


NETS = {
    "binary_padded": lambda: randomize_bn(PaddedNet("zero"), seed=1),
    "two_bit": lambda: randomize_bn(TwoBitNet(), seed=3),
}


def demo_net(width: int = 8) -> nn.Module:
    """The demo network's architecture (binary encoder-decoder, attention, MBU), untrained."""
    from brevitas_models.nets import build

    torch.manual_seed(0)
    return randomize_bn(build("demo", width=width), seed=4)


DEMO_SIZE = 32
