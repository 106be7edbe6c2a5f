"""Reference networks built only from stock Brevitas layers and quantizers.

They stand for what a hardware engineer brings from elsewhere (FINN's CNV and TFC examples):
zero-padded convolutions, max pooling, fully connected layers, the scaling layer Brevitas
examples put before the classifier. Weights are random unless trained by the caller.
"""

from __future__ import annotations

import torch
from brevitas import nn as qnn
from brevitas.quant import (
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
    Uint8ActPerTensorFloat,
)
from torch import nn


def _randomize_bn(module: nn.Module, generator: torch.Generator) -> None:
    """Give every batch norm non-trivial statistics so that thresholds differ per channel."""
    for bn in module.modules():
        if isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = bn.num_features
            bn.running_mean.copy_(torch.randn(n, generator=generator) * 2)
            bn.running_var.copy_(torch.rand(n, generator=generator) * 2 + 0.5)
            bn.weight.data.copy_(torch.randn(n, generator=generator))
            bn.bias.data.copy_(torch.randn(n, generator=generator))


class TensorNorm(nn.Module):
    """One scalar scale and shift over the whole tensor, as Brevitas' CNV example uses before
    its classifier output (running statistics, so it folds into a Mul and an Add)."""

    def __init__(self, eps: float = 1e-4) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1))
        self.register_buffer("running_mean", torch.zeros(1))
        self.register_buffer("running_var", torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean, var = x.mean(), x.var(unbiased=False)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach().reshape(1), 0.1)
                self.running_var.lerp_(var.detach().reshape(1), 0.1)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


class CNVStyle(nn.Module):
    """A CIFAR-10 CNV-style binary network (FINN's CNV-W1A1 shape, narrower)."""

    def __init__(self, width: int = 16, num_classes: int = 10, seed: int = 0) -> None:
        super().__init__()
        w = width
        self.inp = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
        layers: list[nn.Module] = []
        chans = [(3, w), (w, w), (w, 2 * w), (2 * w, 2 * w), (2 * w, 4 * w), (4 * w, 4 * w)]
        for i, (cin, cout) in enumerate(chans):
            layers += [
                qnn.QuantConv2d(cin, cout, 3, padding=0, bias=False,
                                weight_quant=SignedBinaryWeightPerTensorConst),
                nn.BatchNorm2d(cout),
                qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True),
            ]
            if i in (1, 3):
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            qnn.QuantLinear(4 * w, 4 * w, bias=False, weight_quant=SignedBinaryWeightPerTensorConst),
            nn.BatchNorm1d(4 * w),
            qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True),
            qnn.QuantLinear(4 * w, num_classes, bias=False,
                            weight_quant=SignedBinaryWeightPerTensorConst),
            TensorNorm(),
        )
        with torch.no_grad():
            _randomize_bn(self, torch.Generator().manual_seed(seed))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.inp(x))
        return self.classifier(torch.flatten(x, 1))


class TFCStyle(nn.Module):
    """An MNIST TFC-style fully connected binary network."""

    def __init__(self, width: int = 64, num_classes: int = 10, seed: int = 0) -> None:
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
        dims = [28 * 28, width, width, width]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [
                qnn.QuantLinear(a, b, bias=False, weight_quant=SignedBinaryWeightPerTensorConst),
                nn.BatchNorm1d(b),
                qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True),
            ]
        layers.append(qnn.QuantLinear(width, num_classes, bias=False,
                                      weight_quant=SignedBinaryWeightPerTensorConst))
        self.body = nn.Sequential(*layers)
        with torch.no_grad():
            _randomize_bn(self, torch.Generator().manual_seed(seed))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.inp(torch.flatten(x, 1) * 2 - 1))
