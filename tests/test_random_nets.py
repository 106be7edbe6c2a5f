"""The random network generator: valid, deterministic, described by its spec."""

import numpy as np
import torch

from brevitas_models.random_nets import FEATURES, input_quant, random_input, random_net


def test_nets_are_valid_and_described():
    for seed in range(20):
        model, spec = random_net(seed)
        assert spec.features <= set(FEATURES), spec.features - set(FEATURES)
        assert spec.layers[-1].startswith("logits = classifier")
        x = random_input(spec, 2, seed)
        with torch.no_grad():
            y = model(x)
        classes, h, w = (int(v) for v in spec.layers[-1].split("-> ")[1].split("x"))
        assert tuple(y.shape) == (2, classes, h, w), spec.describe()


def test_same_seed_same_net():
    (a, spec_a), (b, spec_b) = random_net(7), random_net(7)
    assert spec_a == spec_b
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert random_net(8)[1].describe() != spec_a.describe()


def test_input_quantizer_keeps_raw_pixels():
    quant = input_quant().eval()
    assert float(quant.act_quant.scale()) == float(np.float32(1 / 255))
    pixels = torch.arange(256, dtype=torch.float32)
    with torch.no_grad():
        out = quant(pixels / 255)
    assert torch.equal(torch.round(out / quant.act_quant.scale()), pixels)
