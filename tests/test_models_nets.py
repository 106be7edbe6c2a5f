"""Network registry: names, widths, shapes, errors."""

import pytest
import torch

from brevitas_models.errors import ModelError
from brevitas_models.nets import NETWORKS, build


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize("size", [(32, 32), (16, 40)])
def test_networks_map_images_to_per_pixel_logits(name, size):
    torch.manual_seed(0)
    model = build(name, width=4, num_classes=3)
    model.eval()
    with torch.no_grad():
        logits = model(torch.rand(2, 3, *size))
    assert logits.shape == (2, 3, *size)
    assert model.num_classes == 3 and model.width == 4 and model.name == name
    assert len(model.input_size) == 2


def test_unknown_network_names_the_known_ones():
    with pytest.raises(ModelError, match="unknown network 'unet'; known: demo, demo_fp, pixel_baseline"):
        build("unet")


@pytest.mark.parametrize("width", [0, -3, 2.5, "8", True])
def test_width_must_be_a_positive_integer(width):
    with pytest.raises(ModelError, match="width must be a positive integer"):
        build("demo", width=width)


def test_num_classes_must_be_positive():
    with pytest.raises(ModelError, match="num_classes must be a positive integer"):
        build("pixel_baseline", num_classes=0)


def test_pixel_baseline_sees_no_context():
    model = build("pixel_baseline", width=4)
    model.eval()
    x = torch.rand(1, 3, 8, 8)
    y = x.clone()
    y[..., 0, 0] = 1 - y[..., 0, 0]
    with torch.no_grad():
        changed = (model(x) != model(y)).any(1)[0]
    assert changed[0, 0] and changed.sum() == 1


def test_demo_is_binary_between_input_and_classifier():
    model = build("demo", width=4)
    model.eval()
    seen = []
    model.dec1.act.register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        model(torch.rand(1, 3, 16, 16))
    scale = model.dec1.act.scale()
    assert torch.equal(seen[0].abs(), scale.expand_as(seen[0]))


def test_register_adds_a_network_once():
    from brevitas_models import nets

    nets.register("test_tiny", lambda width, num_classes: torch.nn.Conv2d(3, num_classes, 1), 2)
    try:
        model = build("test_tiny", num_classes=4)
        assert model.width == 2 and model(torch.rand(1, 3, 5, 5)).shape == (1, 4, 5, 5)
        with pytest.raises(ModelError, match="already registered"):
            nets.register("test_tiny", lambda w, c: None, 2)
    finally:
        del nets.NETWORKS["test_tiny"], nets.DEFAULT_WIDTHS["test_tiny"]
