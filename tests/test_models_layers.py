"""Building blocks of brevitas_models.layers: -1 padding, block shapes, shared scales, errors."""

import math

import pytest
import torch
from torch import nn

from brevitas_models.errors import ModelError
from brevitas_models.layers import (
    BinaryAct,
    BinaryConvBlock,
    Classifier,
    InputBlock,
    MinusOnePad,
)


def _set_scale(act: BinaryAct, scale: float) -> None:
    impl = act.quant.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl
    with torch.no_grad():
        impl.value.fill_(math.log2(scale))


def _binary_input(act: BinaryAct, shape=(2, 4, 6, 6)) -> torch.Tensor:
    torch.manual_seed(0)
    return act(torch.randn(*shape))


def test_minus_one_pad_borders_are_minus_scale():
    act = BinaryAct()
    _set_scale(act, 0.75)
    x = _binary_input(act)
    y = MinusOnePad(2, act)(x)
    assert y.shape == (2, 4, 10, 10)
    assert torch.equal(y[..., 2:-2, 2:-2], x)
    border = torch.ones(10, 10, dtype=torch.bool)
    border[2:-2, 2:-2] = False
    assert torch.all(y[..., border] == -0.75)


def test_block_output_is_binary_with_block_scale():
    act = BinaryAct()
    block = BinaryConvBlock(4, 8, act)
    _set_scale(block.act, 1.5)
    y = block(_binary_input(act))
    assert y.shape == (2, 8, 6, 6)
    assert set(torch.unique(y).tolist()) == {-1.5, 1.5}


@pytest.mark.parametrize("padding", ["minus_one", "zero"])
@pytest.mark.parametrize(
    "stride, dilation, out_hw", [(1, 1, 6), (2, 1, 3), (1, 2, 6), (1, 3, 6)]
)
def test_block_shapes(padding, stride, dilation, out_hw):
    act = BinaryAct()
    block = BinaryConvBlock(4, 5, act, stride=stride, dilation=dilation, padding=padding)
    assert block(_binary_input(act)).shape == (2, 5, out_hw, out_hw)


def test_minus_one_and_zero_padding_differ_only_at_the_border():
    act = BinaryAct()
    _set_scale(act, 0.5)
    minus_one = BinaryConvBlock(4, 6, act, padding="minus_one")
    zero = BinaryConvBlock(4, 6, act, padding="zero")
    x = _binary_input(act, (1, 4, 8, 8))
    minus_one.train(), zero.train()
    minus_one(x)  # initialise the weight scales, then give both blocks the same parameters
    zero.load_state_dict(minus_one.state_dict())
    minus_one.eval(), zero.eval()
    with torch.no_grad():
        a = minus_one.bn(minus_one.conv(minus_one.pad(x)))
        b = zero.bn(zero.conv(zero.pad(x)))
    assert torch.equal(a[..., 1:-1, 1:-1], b[..., 1:-1, 1:-1])
    border_diff = (a - b).abs()
    border_diff[..., 1:-1, 1:-1] = 0
    assert border_diff.sum() > 0
    # the difference at the border is exactly the -scale padding: conv of the pad alone
    weight = minus_one.conv.quant_weight().value
    pad_only = torch.nn.functional.pad(torch.zeros_like(x), (1, 1, 1, 1), value=-0.5)
    expected = torch.nn.functional.conv2d(pad_only, weight)
    bn_gain = (minus_one.bn.weight / torch.sqrt(minus_one.bn.running_var + minus_one.bn.eps)).view(1, -1, 1, 1)
    torch.testing.assert_close(a - b, expected * bn_gain)


def test_shared_activation_scale():
    first = BinaryAct()
    second = BinaryAct(share_with=first)
    _set_scale(first, 0.25)
    assert torch.equal(second.scale(), torch.tensor([0.25]))
    y = torch.cat([first(torch.randn(1, 2, 3, 3)), second(torch.randn(1, 2, 3, 3))], 1)
    assert set(torch.unique(y).tolist()) <= {-0.25, 0.25}
    # one parameter, listed once
    block = nn.ModuleList([first, second])
    assert len(list(block.parameters())) == 1


def test_input_block_takes_unit_range_input():
    block = InputBlock(3, 4)
    y = block(torch.rand(2, 3, 8, 8))
    assert y.shape == (2, 4, 8, 8)
    assert torch.unique(y.abs()).numel() == 1


def test_classifier_needs_and_uses_a_quant_tensor():
    act = BinaryAct(return_quant_tensor=True)
    cls = Classifier(4, 3)
    y = cls(act(torch.randn(2, 4, 5, 5)))
    assert isinstance(y, torch.Tensor) and y.shape == (2, 3, 5, 5)
    with pytest.raises(ModelError, match="QuantTensor"):
        cls(torch.randn(2, 4, 5, 5))


def test_block_errors_are_one_line_model_errors():
    with pytest.raises(ModelError, match="padding must be one of"):
        BinaryConvBlock(2, 2, BinaryAct(), padding="reflect")
    with pytest.raises(ModelError, match="needs in_act"):
        BinaryConvBlock(2, 2, None, padding="minus_one")
    # a 1x1 conv needs no padding, so no input scale either
    BinaryConvBlock(2, 2, None, kernel_size=1)
