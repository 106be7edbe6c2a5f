"""Named configurations of the paper-scale network: which network, width, classes, input size,
data set and metrics. ``build_config(name, binary=True)`` builds the binary network or
(``binary=False``) its full-precision twin.

| name                 | data set   | classes | input (W x H) | width | blocks  |
|----------------------|------------|---------|---------------|-------|---------|
| seg-r18-cityscapes   | Cityscapes | 19      | 1024 x 512    | 64    | 2,2,2,2 |
| road-r18-kitti       | KITTI Road | 2       | 1280 x 384    | 64    | 2,2,2,2 |
| sod-r18-ecssd        | ECSSD      | 2       | 352 x 352     | 64    | 2,2,2,2 |
| seg-r18-tiny         | synthetic  | 6       | 64 x 64       | 8     | 1,1,1,1 |
| road-r18-tiny        | KITTI Road | 2       | 128 x 64      | 8     | 1,1,1,1 |
| sod-r18-tiny         | ECSSD      | 2       | 64 x 64       | 8     | 1,1,1,1 |

The tiny variants are for tests and quick runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from brevitas_models.errors import ModelError
from brevitas_models.segnet import ResNetSeg, check_size

DATASETS = ("synthetic", "cityscapes", "kitti_road", "ecssd")


@dataclass(frozen=True)
class NetConfig:
    name: str
    dataset: str
    num_classes: int
    size: tuple[int, int]  # (H, W)
    width: int = 64
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    dilations: tuple[int, ...] = (1, 2, 3, 4)


_TINY = {"width": 8, "blocks": (1, 1, 1, 1)}

CONFIGS: dict[str, NetConfig] = {c.name: c for c in (
    NetConfig("seg-r18-cityscapes", "cityscapes", 19, (512, 1024)),
    NetConfig("road-r18-kitti", "kitti_road", 2, (384, 1280)),
    NetConfig("sod-r18-ecssd", "ecssd", 2, (352, 352)),
    NetConfig("seg-r18-tiny", "synthetic", 6, (64, 64), **_TINY),
    NetConfig("road-r18-tiny", "kitti_road", 2, (64, 128), **_TINY),
    NetConfig("sod-r18-tiny", "ecssd", 2, (64, 64), **_TINY),
)}


def get_config(name: str) -> NetConfig:
    if name not in CONFIGS:
        raise ModelError(f"unknown configuration {name!r}; known: {', '.join(CONFIGS)}")
    return CONFIGS[name]


def build_config(name: str, binary: bool = True, size: tuple[int, int] | None = None) -> nn.Module:
    """The network of configuration ``name`` (its twin with ``binary=False``), meant for
    ``size`` (H, W; default the configuration's); refuses a size it cannot take."""
    config = get_config(name)
    size = tuple(size) if size is not None else config.size
    net_name = name if binary else f"{name}:fp"
    check_size(net_name, size)
    model = ResNetSeg(config.width, config.num_classes, binary, blocks=config.blocks,
                      dilations=config.dilations, input_size=size)
    model.name, model.width, model.num_classes = net_name, config.width, config.num_classes
    model.config, model.input_size = name, size
    return model
