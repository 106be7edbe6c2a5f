"""Half-to-even rounding of multi-bit activations reproduced by the thresholds, ties included."""

import numpy as np
import torch
from brevitas.export import export_qonnx
from qonnx.core.modelwrapper import ModelWrapper

from hw_gen.lowering import lower, rounding
from hw_gen.lowering.pipeline import step_path
from hw_gen.verify import compare_finn_with_torch
from lowering_nets import TieNet, pixels, randomize_bn


def tie_net():
    torch.manual_seed(0)
    net = TieNet()
    randomize_bn(net.b0, seed=1)
    return net.eval()


def lowered(net, x, out):
    path = out / "tie.onnx"
    export_qonnx(net, x[:1], str(path), dynamo=False)
    lower(path, out / "lowered", stop_after="widths")
    return ModelWrapper(str(step_path(out / "lowered", "widths")))


def test_the_network_really_meets_ties():
    net, x = tie_net(), pixels((2, 3, 12, 12))
    with torch.no_grad():
        for pre in net.pre_activations(x):
            frac = (pre - torch.floor(pre)).numpy()
            assert np.count_nonzero(frac == 0.5) > 20


def test_ties_round_half_to_even_exactly(tmp_path):
    net, x = tie_net(), pixels((2, 3, 12, 12))
    cmp = compare_finn_with_torch(lowered(net, x, tmp_path), net, x.numpy())
    assert cmp.passed and cmp.labels_equal, cmp


def test_without_the_tie_rule_the_check_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(rounding.ApplyHalfEvenTies, "apply", lambda self, model: (model, False))
    net, x = tie_net(), pixels((2, 3, 12, 12))
    cmp = compare_finn_with_torch(lowered(net, x, tmp_path), net, x.numpy())
    assert not cmp.passed
