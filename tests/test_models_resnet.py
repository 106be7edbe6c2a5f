"""The paper-scale network: configurations, shapes, the integer residual stream, refusals."""

import numpy as np
import pytest
import torch

from brevitas_models.configs import CONFIGS, build_config
from brevitas_models.errors import ModelError
from brevitas_models.resnet import BiRealUnit
from brevitas_models.segnet import ResNetSeg
from lowering_nets import pixels


def test_named_configurations():
    assert {"seg-r18-cityscapes", "road-r18-kitti", "sod-r18-ecssd"} <= set(CONFIGS)
    assert (CONFIGS["seg-r18-cityscapes"].num_classes, CONFIGS["seg-r18-cityscapes"].size) == (19, (512, 1024))
    assert CONFIGS["road-r18-kitti"].size == (384, 1280)
    assert CONFIGS["sod-r18-ecssd"].size == (352, 352)


@pytest.mark.parametrize("binary", [True, False])
def test_tiny_variant_runs_and_trains(binary):
    torch.manual_seed(0)
    model = build_config("seg-r18-tiny", binary=binary)
    x = pixels((2, 3, 64, 96))
    out = model(x)
    assert out.shape == (2, 6, 64, 96)
    out.square().mean().backward()
    assert all(p.grad is not None for p in model.backbone.stages.parameters() if p.requires_grad)


def test_resnet18_has_resnet18_units():
    model = build_config("seg-r18-cityscapes")
    units = [m for m in model.modules() if isinstance(m, BiRealUnit)]
    # 4 stages x 2 basic blocks x 2 units, 3 of them strided with a 1x1 binary shortcut
    assert len(units) == 16 and sum(u.shortcut is not None for u in units) == 3
    assert model.backbone.widths == [64, 128, 256, 512]


def test_residual_stream_is_integer_on_one_scale():
    torch.manual_seed(1)
    model = build_config("seg-r18-tiny").eval()
    seen = []
    stage = model.backbone.stages[0]
    scale = float(model.backbone.stage_quants[0].act_quant.scale().detach())
    for unit in stage:
        for q in (unit.q_main, unit.q_sum):
            assert float(q.act_quant.scale().detach()) == scale
            q.register_forward_hook(lambda m, i, o: seen.append(o.detach() / scale))
    with torch.no_grad():
        model(pixels((1, 3, 64, 64)))
    for values in seen:
        assert torch.equal(values, values.round()) and values.min() >= -8 and values.max() <= 7


@pytest.mark.parametrize("size, message", [
    ((64, 80), "must be a multiple of 32"),
    ((32, 64), "at least 64"),
])
def test_sizes_refused_in_one_line(size, message):
    with pytest.raises(ModelError) as info:
        build_config("seg-r18-tiny", size=size)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_smaller_than_built_for_is_refused():
    model = build_config("seg-r18-tiny", size=(128, 128))
    with pytest.raises(ModelError, match="too small for the upsampling dilation 3"):
        model.check_input((64, 128))


def test_twin_has_the_same_structure():
    binary, twin = build_config("seg-r18-tiny"), build_config("seg-r18-tiny", binary=False)
    assert isinstance(twin, ResNetSeg) and not twin.binary
    assert [u.dilations for u in binary.ups] == [u.dilations for u in twin.ups]
    assert twin.name == "seg-r18-tiny:fp"


def test_binary_network_starts_from_its_twin():
    from brevitas_models.trainer import init_from_twin

    torch.manual_seed(0)
    binary, twin = build_config("seg-r18-tiny"), build_config("seg-r18-tiny", binary=False)
    with torch.no_grad():
        binary.eval()(pixels((1, 3, 64, 64)))
    twin_state = twin.state_dict()
    copied = init_from_twin(binary, twin)
    assert copied == len(twin_state)  # every twin tensor has its place in the binary network
    state = binary.state_dict()
    assert torch.equal(state["head.conv.weight"], twin_state["head.weight"])
    assert torch.equal(state["backbone.stages.1.0.shortcut.1.running_var"],
                       twin_state["backbone.stages.1.0.shortcut.1.running_var"])
