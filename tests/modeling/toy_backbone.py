"""A registered toy backbone (stride-2 conv, BN, ReLU; 8 channels) for tests that build whole models quickly."""
from contextlib import contextmanager
from typing import Iterator

from torch import nn

from fastreid.modeling import BACKBONE_REGISTRY


@contextmanager
def toy_backbone_registered(name: str) -> Iterator[None]:
    """Registers the toy backbone builder as ``name`` in BACKBONE_REGISTRY for the duration of the block."""
    def build(cfg):
        net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU())
        net.out_channels = 8
        return net

    build.__name__ = name
    BACKBONE_REGISTRY.register(build)
    try:
        yield
    finally:
        BACKBONE_REGISTRY._obj_map.pop(name)
