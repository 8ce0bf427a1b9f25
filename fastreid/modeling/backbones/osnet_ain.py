"""OSNet-AIN (Zhou et al., "Learning Generalisable Omni-Scale Representations for Person Re-Identification",
TPAMI 2021): OSNet with instance normalisation placed by architecture search, at widths x1_0 / x0_75 / x0_5 /
x0_25.

Module names are torchreid's ``osnet_ain`` ones (``conv2.0.conv2.3.layers.2.conv1``, ``pool2.0.conv``,
``conv2.0.IN``, ...), so its ImageNet and re-id weights load by name; as in :mod:`.osnet`, the backbone ends at
``conv5`` and torchreid's fc and classifier are the head's.
"""
from typing import List, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from fastreid.layers import InstanceNorm2d
from fastreid.modeling.pretrained import init_pretrained

from .build import BACKBONE_REGISTRY
from .osnet import (
    OSNET_CHANNELS,
    OSNET_IMAGENET_HEAD_KEYS,
    ChannelGate,
    ConvLayer,
    LightConv3x3,
    init_osnet_params,
    osnet_channels,
    osnet_zoo_options,
)
from .zoo import register_zoo_model

__all__ = ["LightConvStream", "OSBlockAIN", "OSNetAIN", "build_osnet_ain_backbone"]

# Per stage, which blocks put instance norm inside the residual branch (torchreid's OSBlockINin; the others
# are its plain OSBlock): the searched placement of OSNet-AIN.
_IN_INSIDE = ((True, True), (False, True), (True, False))


class LightConvStream(nn.Module):
    """``depth`` lite 3×3 convolutions in a row (module ``layers``)."""

    def __init__(self, in_channels: int, out_channels: int, depth: int, norm: str = "BN") -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"LightConvStream depth must be at least 1, got {depth}")
        convs = [LightConv3x3(in_channels, out_channels, norm)]
        convs += [LightConv3x3(out_channels, out_channels, norm) for _ in range(depth - 1)]
        self.layers = nn.Sequential(*convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class OSBlockAIN(nn.Module):
    """OSNet-AIN's omni-scale block: ``streams`` streams of 1 … T lite convolutions (``conv2``), one gate.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        norm: norm name.
        instance_norm: torchreid's ``OSBlockINin``: the residual branch ends with an affine InstanceNorm2d
            (``IN``) instead of ``conv3``'s norm; otherwise torchreid's ``OSBlock``.
        reduction: width ratio of the bottleneck.
        streams: number of streams T.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str = "BN", instance_norm: bool = False,
                 reduction: int = 4, streams: int = 4) -> None:
        super().__init__()
        if out_channels % reduction:
            raise ValueError(f"OSBlockAIN out_channels {out_channels} must be a multiple of reduction {reduction}")
        mid = out_channels // reduction
        self.conv1 = ConvLayer(in_channels, mid, norm=norm)
        self.conv2 = nn.ModuleList(LightConvStream(mid, mid, t, norm) for t in range(1, streams + 1))
        self.gate = ChannelGate(mid)
        self.conv3 = ConvLayer(mid, out_channels, norm=norm, with_norm=not instance_norm, relu=False)
        self.downsample = (
            ConvLayer(in_channels, out_channels, norm=norm, relu=False) if in_channels != out_channels else None
        )
        self.IN = InstanceNorm2d(out_channels, affine=True) if instance_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        x3 = self.conv3(sum(self.gate(stream(x1)) for stream in self.conv2))
        if self.IN is not None:
            x3 = self.IN(x3)
        identity = self.downsample(x) if self.downsample is not None else x
        return F.relu(x3 + identity)


class OSNetAIN(nn.Module):
    """OSNet-AIN's convolutional part: instance-normalised stem, three stages of two :class:`OSBlockAIN`
    (``conv2``-``conv4``) with 1×1 conv + 2×2 average pool transitions (``pool2``, ``pool3``), 1×1 ``conv5``.

    Args:
        channels: stem width and the widths of stages 2-4 (see :data:`fastreid.modeling.backbones.osnet.
            OSNET_CHANNELS`).
        norm: norm name for :func:`fastreid.layers.get_norm` (the instance norms stay instance norms).

    Attributes:
        out_channels (int): ``channels[3]``.
    """

    def __init__(self, channels: Sequence[int], norm: str = "BN") -> None:
        super().__init__()
        if len(channels) != 4:
            raise ValueError(f"OSNetAIN takes 4 channel widths, got {channels}")
        self.conv1 = ConvLayer(3, channels[0], 7, stride=2, padding=3, instance_norm=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = self._make_stage(channels[0], channels[1], norm, _IN_INSIDE[0])
        self.pool2 = nn.Sequential(ConvLayer(channels[1], channels[1], norm=norm), nn.AvgPool2d(2, stride=2))
        self.conv3 = self._make_stage(channels[1], channels[2], norm, _IN_INSIDE[1])
        self.pool3 = nn.Sequential(ConvLayer(channels[2], channels[2], norm=norm), nn.AvgPool2d(2, stride=2))
        self.conv4 = self._make_stage(channels[2], channels[3], norm, _IN_INSIDE[2])
        self.conv5 = ConvLayer(channels[3], channels[3], norm=norm)
        self.out_channels = int(channels[3])
        init_osnet_params(self)

    @staticmethod
    def _make_stage(in_channels: int, out_channels: int, norm: str, instance_norms: Sequence[bool]) -> nn.Sequential:
        blocks: List[nn.Module] = []
        for i, instance_norm in enumerate(instance_norms):
            blocks.append(OSBlockAIN(in_channels if i == 0 else out_channels, out_channels, norm, instance_norm))
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Maps B×3×H×W images to the B×C×H/16×W/16 ``conv5`` map (C = ``out_channels``)."""
        x = self.maxpool(self.conv1(x))
        x = self.pool2(self.conv2(x))
        x = self.pool3(self.conv3(x))
        return self.conv5(self.conv4(x))


@BACKBONE_REGISTRY.register()
def build_osnet_ain_backbone(cfg) -> OSNetAIN:
    """OSNet-AIN of width MODEL.BACKBONE.DEPTH ("x1_0", "x0_75", "x0_5", "x0_25"); NORM picks the batch-norm
    layers; PRETRAIN / PRETRAIN_PATH load torchreid's ImageNet weights (``osnet_ain_<width>_imagenet.pth``).
    WITH_IBN does not apply (the instance norms are part of the architecture)."""
    bb = cfg.MODEL.BACKBONE
    model = OSNetAIN(osnet_channels(bb.DEPTH), norm=bb.NORM)
    init_pretrained(model, bb.PRETRAIN, bb.PRETRAIN_PATH, [f"osnet_ain_{bb.DEPTH}_imagenet.pth"],
                    ignore_unexpected=OSNET_IMAGENET_HEAD_KEYS)
    return model


for _depth in OSNET_CHANNELS:
    # torchreid publishes the x1_0 figures only (the other widths have ImageNet weights but no table row).
    register_zoo_model(f"osnet_ain_{_depth}", osnet_zoo_options("build_osnet_ain_backbone", _depth),
                       published={"params_m": 2.2, "gmacs": 0.98} if _depth == "x1_0" else None)
