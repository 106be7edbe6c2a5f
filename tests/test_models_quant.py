"""Quantizers of brevitas_models.quant: forward values, straight-through gradients, the
in-place clamp trap, the fixed UINT8 input scale, 8-bit and shared low-bit quantizers."""

import math

import brevitas.nn as qnn
import pytest
import torch
from brevitas.quant.binary import SignedBinaryWeightPerTensorConst

from brevitas_models.layers import shared_quant_identity
from brevitas_models.quant import (
    BinaryActPerTensor,
    BinaryWeightPerChannel,
    Int8WeightPerTensor,
    IntActPerTensor,
    Uint8InputFixed,
)


def _binary_conv(out_ch: int = 4, in_ch: int = 3) -> qnn.QuantConv2d:
    torch.manual_seed(0)
    conv = qnn.QuantConv2d(in_ch, out_ch, 3, bias=False, weight_quant=BinaryWeightPerChannel)
    conv.train()
    conv(torch.randn(1, in_ch, 5, 5))  # the first training forward initialises the scales
    return conv


def _bipolar(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, 1.0, -1.0)


def _set_act_scale(act: qnn.QuantIdentity, scale: float) -> None:
    impl = act.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl
    with torch.no_grad():
        impl.value.fill_(math.log2(scale))


def test_binary_weights_are_plus_minus_channel_scale():
    conv = _binary_conv()
    qw = conv.quant_weight()
    scale = qw.scale
    assert scale.shape == (4, 1, 1, 1)
    assert torch.all(scale > 0)
    # initialised per channel to mean |w| (XNOR-Net), so the channels differ
    expected_init = conv.weight.detach().abs().mean(dim=(1, 2, 3)).view(4, 1, 1, 1)
    torch.testing.assert_close(scale.detach(), expected_init)
    assert len(torch.unique(scale.detach())) == 4
    assert torch.equal(qw.value.detach(), _bipolar(conv.weight.detach()) * scale.detach())
    assert torch.equal(qw.bit_width, torch.tensor(1.0))


def test_binary_weight_scale_stays_positive_when_learned_value_goes_negative():
    conv = _binary_conv()
    impl = conv.weight_quant.tensor_quant.scaling_impl
    with torch.no_grad():
        impl.value.fill_(-3.0)  # log2 domain: the scale is 2**-3
    scale = conv.quant_weight().scale.detach()
    assert torch.equal(scale, torch.full_like(scale, 0.125))


def test_binary_weight_ste_is_identity_times_scale_everywhere():
    conv = _binary_conv(out_ch=2, in_ch=1)
    with torch.no_grad():
        conv.weight.copy_(
            torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 10.0, -10.0]).view(1, 1, 3, 3).repeat(2, 1, 1, 1)
        )
    upstream = torch.arange(18, dtype=torch.float32).view(2, 1, 3, 3) - 7.0
    qw = conv.quant_weight()
    (qw.value * upstream).sum().backward()
    scale = qw.scale.detach()
    assert torch.equal(conv.weight.grad, upstream * scale)
    # the per-channel scale is learned: it receives a gradient
    assert conv.weight_quant.tensor_quant.scaling_impl.value.grad.abs().sum() > 0


def test_training_step_changes_float_weights_only_through_the_optimizer():
    conv = _binary_conv(out_ch=2, in_ch=1)
    with torch.no_grad():
        conv.weight.mul_(50.0)  # far outside [-scale, scale]: an in-place clamp would show
    before = conv.weight.detach().clone()
    out = conv(torch.randn(2, 1, 6, 6))
    out.square().mean().backward()
    assert torch.equal(conv.weight.detach(), before), "forward/backward modified the weights"
    lr = 0.01
    grad = conv.weight.grad.clone()
    torch.optim.SGD([conv.weight], lr=lr).step()
    assert torch.equal(conv.weight.detach(), before - lr * grad)


def test_brevitas_const_binary_weight_quantizer_clamps_in_place():
    """The trap our quantizer avoids is real: Brevitas' default rewrites the weights."""
    conv = qnn.QuantConv2d(1, 2, 3, bias=False, weight_quant=SignedBinaryWeightPerTensorConst)
    with torch.no_grad():
        conv.weight.fill_(5.0)
    conv(torch.randn(1, 1, 4, 4))
    assert torch.all(conv.weight.detach() == 0.1)


@pytest.mark.parametrize("scale", [1.0, 0.375, 2.5])
def test_binary_activation_is_plus_minus_tensor_scale(scale):
    act = qnn.QuantIdentity(act_quant=BinaryActPerTensor)
    _set_act_scale(act, scale)
    x = torch.tensor([-4.0, -1.0, -1e-7, 0.0, 1e-7, 0.3, 7.0])
    y = act(x)
    s = act.act_quant.scale()
    assert s.numel() == 1
    assert torch.equal(s, torch.tensor([scale]))
    assert torch.equal(y, _bipolar(x) * s)


def test_binary_activation_ste_passes_inside_scale_window_only():
    act = qnn.QuantIdentity(act_quant=BinaryActPerTensor)
    _set_act_scale(act, 0.5)
    x = torch.tensor([-2.0, -0.5, -0.25, 0.0, 0.25, 0.5, 0.5001, 2.0], requires_grad=True)
    upstream = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    act.train()
    (act(x) * upstream).sum().backward()
    inside = x.detach().abs() <= 0.5
    assert torch.equal(x.grad, torch.where(inside, upstream * 0.5, torch.zeros(())))
    assert act.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl.value.grad is not None


def test_uint8_input_is_exactly_pixel_over_255():
    quant = qnn.QuantIdentity(act_quant=Uint8InputFixed)
    scale = quant.act_quant.scale()
    assert torch.equal(scale, torch.tensor(1.0 / 255.0))
    pixels = torch.arange(256, dtype=torch.float32)
    y = quant(pixels / 255.0)
    assert torch.equal(y, pixels * scale)
    assert torch.equal(torch.round(y / scale), pixels)
    # clamped to the UINT8 range
    clamped = quant(torch.tensor([-0.3, 1.7]))
    assert torch.equal(clamped, torch.tensor([0.0, 255.0]) * scale)


def test_uint8_input_rounds_half_to_even():
    quant = qnn.QuantIdentity(act_quant=Uint8InputFixed)
    scale = quant.act_quant.scale()
    halves = torch.tensor([0.5, 1.5, 2.5, 3.5, 254.5])
    x = halves * scale
    assert torch.equal(x / scale, halves)  # the inputs really are ties
    assert torch.equal(quant(x), torch.tensor([0.0, 2.0, 2.0, 4.0, 254.0]) * scale)


def test_int8_classifier_weights_are_narrow_integers_times_tensor_scale():
    torch.manual_seed(1)
    conv = qnn.QuantConv2d(8, 5, 1, bias=False, weight_quant=Int8WeightPerTensor)
    qw = conv.quant_weight()
    assert qw.scale.numel() == 1
    assert torch.equal(qw.scale.detach(), conv.weight.detach().abs().max() / 127)
    ints = torch.round(qw.value.detach() / qw.scale.detach())
    assert torch.equal(qw.value.detach(), ints * qw.scale.detach())
    assert ints.min() >= -127 and ints.max() <= 127
    assert ints.abs().max() == 127


def test_shared_low_bit_quantizer_makes_an_integer_add():
    first = qnn.QuantIdentity(act_quant=IntActPerTensor)
    second = shared_quant_identity(first)
    a = first(torch.linspace(-3, 3, 41))
    b = second(torch.linspace(2, -1, 41))
    scale = first.act_quant.scale()
    assert torch.equal(scale, second.act_quant.scale())
    a_int, b_int = torch.round(a / scale), torch.round(b / scale)
    assert torch.equal(a, a_int * scale) and torch.equal(b, b_int * scale)
    assert a_int.min() == -8 and a_int.max() == 7  # signed 4 bit
    # the sum of two addends on one scale is the integer sum on that scale
    assert torch.equal(a + b, (a_int + b_int) * scale)
    with torch.no_grad():
        first.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl.value.fill_(0.0)
    assert torch.equal(first.act_quant.scale(), second.act_quant.scale())


def test_binary_activation_matches_brevitas_clamped_binary_quant_gradients():
    """The fused quantizer computes exactly what Brevitas' ClampedBinaryQuant over a
    TensorClamp computes, forward and backward (it only saves element-wise passes)."""
    from brevitas.core.function_wrapper import TensorClamp
    from brevitas.quant.base import SignedBinaryClampedConst
    from brevitas.quant.solver import ActQuantSolver

    class Reference(SignedBinaryClampedConst, ActQuantSolver):
        tensor_clamp_impl = TensorClamp
        scaling_impl_type = BinaryActPerTensor.scaling_impl_type
        restrict_scaling_type = BinaryActPerTensor.restrict_scaling_type
        min_val, max_val = -1.0, 1.0

    ours, reference = qnn.QuantIdentity(act_quant=BinaryActPerTensor), qnn.QuantIdentity(act_quant=Reference)
    assert type(reference.act_quant.fused_activation_quant_proxy.tensor_quant).__name__ == "ClampedBinaryQuant"
    for act in (ours, reference):
        _set_act_scale(act, 0.625)
        act.train()
    torch.manual_seed(3)
    x = torch.cat([torch.randn(500), torch.tensor([0.0, -0.0, 0.625, -0.625])])
    upstream = torch.randn_like(x)
    grads = []
    for act in (ours, reference):
        xi = x.clone().requires_grad_(True)
        y = act(xi)
        (y * upstream).sum().backward()
        param = act.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl.value
        grads.append((y.detach(), xi.grad, param.grad))
    assert torch.equal(grads[0][0], grads[1][0])
    assert torch.equal(grads[0][1], grads[1][1])
    torch.testing.assert_close(grads[0][2], grads[1][2], rtol=1e-5, atol=1e-6)
    assert grads[0][2].abs() > 0
