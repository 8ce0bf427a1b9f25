"""OSNet, the omni-scale network (Zhou et al., ICCV 2019), at widths x1_0 / x0_75 / x0_5 / x0_25, with the
IBN variant (instance norm in the stem and the first stage).

Module names are torchreid's (``conv1.conv``, ``conv2.0.conv2b.1.bn``, ``conv2.2.0.conv``, ``conv5.bn``, ...), so
torchreid's ImageNet and re-id OSNet weights load by name. The backbone stops at ``conv5`` (the last feature
map); torchreid's ``global_avgpool``, ``fc`` (Linear 512, BatchNorm1d, ReLU) and ``classifier`` are the head's
(:class:`fastreid.modeling.heads.TorchreidHead` with MODEL.HEADS.EMBEDDING_DIM 512), so a torchreid state dict
maps onto a fastreid model by prefix (:mod:`fastreid.modeling.layouts.torchreid`).
"""
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from fastreid.layers import InstanceNorm2d, get_norm
from fastreid.modeling.pretrained import init_pretrained

from .build import BACKBONE_REGISTRY
from .zoo import register_zoo_model

__all__ = [
    "OSNET_CHANNELS",
    "OSNET_IMAGENET_HEAD_KEYS",
    "ChannelGate",
    "ConvLayer",
    "LightConv3x3",
    "OSBlock",
    "OSNet",
    "build_osnet_backbone",
    "init_osnet_params",
    "osnet_channels",
    "osnet_zoo_options",
]

# Channels of the stem and of stages 2-4 per width (torchreid's and fast-reid's tables).
OSNET_CHANNELS: Dict[str, List[int]] = {
    "x1_0": [64, 256, 384, 512],
    "x0_75": [48, 192, 288, 384],
    "x0_5": [32, 128, 192, 256],
    "x0_25": [16, 64, 96, 128],
}

# The head of torchreid's ImageNet files (``<model>_imagenet.pth``, found in the torch hub cache where torchreid
# leaves them; they have no published checksum, so they are never downloaded): one fc layer and the 1000-way
# classifier, which are not part of a backbone.
OSNET_IMAGENET_HEAD_KEYS = tuple(f"fc.0.{p}" for p in ("weight", "bias")) + tuple(
    f"fc.1.{p}" for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
) + ("classifier.weight", "classifier.bias")


def osnet_channels(depth: str) -> List[int]:
    """The channel table of width MODEL.BACKBONE.DEPTH ("x1_0", "x0_75", "x0_5" or "x0_25").

    Raises:
        KeyError: naming the bad value and the accepted ones.
    """
    if depth not in OSNET_CHANNELS:
        raise KeyError(
            f"MODEL.BACKBONE.DEPTH '{depth}' is not an OSNet width; set it to one of {sorted(OSNET_CHANNELS)}"
        )
    return list(OSNET_CHANNELS[depth])


class ConvLayer(nn.Module):
    """Convolution (no bias), norm, optional ReLU: torchreid's ``ConvLayer``, ``Conv1x1`` and
    ``Conv1x1Linear`` (same module names ``conv``, ``bn``).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size.
        stride: convolution stride.
        padding: convolution padding.
        norm: norm name for :func:`fastreid.layers.get_norm`.
        instance_norm: an affine InstanceNorm2d in place of ``norm`` (the IN stems).
        with_norm: False for no norm at all (``bn`` is then None).
        relu: apply a ReLU at the end.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 padding: int = 0, norm: str = "BN", *, instance_norm: bool = False, with_norm: bool = True,
                 relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        if not with_norm:
            self.bn: Optional[nn.Module] = None
        elif instance_norm:
            self.bn = InstanceNorm2d(out_channels, affine=True)
        else:
            self.bn = get_norm(norm, out_channels)
        self.relu = nn.ReLU(inplace=True) if relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.relu(x) if self.relu is not None else x


class LightConv3x3(nn.Module):
    """Lite 3×3 convolution: 1×1 pointwise (linear), 3×3 depthwise, norm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, norm: str = "BN") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False, groups=out_channels)
        self.bn = get_norm(norm, out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv2(self.conv1(x))))


class ChannelGate(nn.Module):
    """OSNet's unified aggregation gate: channel weights in (0, 1) from the pooled input, shared by all streams.

    Args:
        channels: C of the B×C×H×W input.
        reduction: bottleneck ratio of the two 1×1 convolutions (``fc1``, ``fc2``).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=True)
        self.gate_activation = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.gate_activation(self.fc2(self.relu(self.fc1(self.global_avgpool(x)))))
        return x * gate


class OSBlock(nn.Module):
    """Omni-scale residual block: four streams of 1, 2, 3 and 4 lite 3×3 convolutions, fused by one gate.

    Args:
        in_channels: input channels.
        out_channels: output channels (the streams run at ``out_channels // bottleneck_reduction``).
        norm: norm name.
        instance_norm: an affine InstanceNorm2d after the residual sum (OSNet-IBN's first stage).
        bottleneck_reduction: width ratio of the block's bottleneck.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str = "BN", instance_norm: bool = False,
                 bottleneck_reduction: int = 4) -> None:
        super().__init__()
        mid = out_channels // bottleneck_reduction
        self.conv1 = ConvLayer(in_channels, mid, norm=norm)
        self.conv2a = LightConv3x3(mid, mid, norm)
        self.conv2b = nn.Sequential(*(LightConv3x3(mid, mid, norm) for _ in range(2)))
        self.conv2c = nn.Sequential(*(LightConv3x3(mid, mid, norm) for _ in range(3)))
        self.conv2d = nn.Sequential(*(LightConv3x3(mid, mid, norm) for _ in range(4)))
        self.gate = ChannelGate(mid)
        self.conv3 = ConvLayer(mid, out_channels, norm=norm, relu=False)
        self.downsample = (
            ConvLayer(in_channels, out_channels, norm=norm, relu=False) if in_channels != out_channels else None
        )
        self.IN = InstanceNorm2d(out_channels, affine=True) if instance_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        x2 = sum(self.gate(stream(x1)) for stream in (self.conv2a, self.conv2b, self.conv2c, self.conv2d))
        identity = self.downsample(x) if self.downsample is not None else x
        out = self.conv3(x2) + identity
        if self.IN is not None:
            out = self.IN(out)
        return F.relu(out)


class OSNet(nn.Module):
    """OSNet's convolutional part: stem (7×7 conv, max pool), three stages of two :class:`OSBlock` (the first
    two followed by a 1×1 conv and 2×2 average pool), and a 1×1 ``conv5``. Output stride 16.

    Args:
        channels: stem width and the widths of stages 2-4 (see :data:`OSNET_CHANNELS`).
        layers: blocks per stage.
        norm: norm name for :func:`fastreid.layers.get_norm`.
        instance_norm: OSNet-IBN: instance norm in the stem and after each block of the first stage.

    Attributes:
        out_channels (int): ``channels[3]``.
    """

    def __init__(self, channels: Sequence[int], layers: Sequence[int] = (2, 2, 2), norm: str = "BN",
                 instance_norm: bool = False) -> None:
        super().__init__()
        if len(channels) != 4 or len(layers) != 3:
            raise ValueError(f"OSNet takes 4 channel widths and 3 stage depths, got {channels} and {layers}")
        self.conv1 = ConvLayer(3, channels[0], 7, stride=2, padding=3, norm=norm, instance_norm=instance_norm)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = self._make_stage(layers[0], channels[0], channels[1], norm, True, instance_norm)
        self.conv3 = self._make_stage(layers[1], channels[1], channels[2], norm, True)
        self.conv4 = self._make_stage(layers[2], channels[2], channels[3], norm, False)
        self.conv5 = ConvLayer(channels[3], channels[3], norm=norm)
        self.out_channels = int(channels[3])
        init_osnet_params(self)

    @staticmethod
    def _make_stage(num_blocks: int, in_channels: int, out_channels: int, norm: str, reduce: bool,
                    instance_norm: bool = False) -> nn.Sequential:
        blocks: List[nn.Module] = [OSBlock(in_channels, out_channels, norm, instance_norm)]
        blocks += [OSBlock(out_channels, out_channels, norm, instance_norm) for _ in range(1, num_blocks)]
        if reduce:
            blocks.append(nn.Sequential(ConvLayer(out_channels, out_channels, norm=norm), nn.AvgPool2d(2, stride=2)))
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Maps B×3×H×W images to the B×C×H/16×W/16 ``conv5`` map (C = ``out_channels``)."""
        x = self.maxpool(self.conv1(x))
        return self.conv5(self.conv4(self.conv3(self.conv2(x))))


def init_osnet_params(module: nn.Module) -> None:
    """torchreid's OSNet initialisation: Kaiming-normal (fan_out) convolutions, unit norms, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@BACKBONE_REGISTRY.register()
def build_osnet_backbone(cfg) -> OSNet:
    """OSNet of width MODEL.BACKBONE.DEPTH ("x1_0", "x0_75", "x0_5", "x0_25"); MODEL.BACKBONE.WITH_IBN builds
    OSNet-IBN; NORM picks the norm layers; PRETRAIN / PRETRAIN_PATH load torchreid's ImageNet weights
    (``osnet[_ibn]_<width>_imagenet.pth`` in the torch hub cache, see
    :func:`fastreid.modeling.pretrained.init_pretrained`)."""
    bb = cfg.MODEL.BACKBONE
    channels = osnet_channels(bb.DEPTH)
    model = OSNet(channels, norm=bb.NORM, instance_norm=bb.WITH_IBN)
    file_name = f"osnet{'_ibn' if bb.WITH_IBN else ''}_{bb.DEPTH}_imagenet.pth"
    init_pretrained(model, bb.PRETRAIN, bb.PRETRAIN_PATH, [file_name], ignore_unexpected=OSNET_IMAGENET_HEAD_KEYS)
    return model


def osnet_zoo_options(builder: str, depth: str, with_ibn: bool = False) -> tuple:
    """Config options of torchreid's OSNet models: the backbone, then global average pooling and an fc layer of
    512 (Linear, BatchNorm1d, ReLU) before the classifier, at every width."""
    return ("MODEL.BACKBONE.NAME", builder, "MODEL.BACKBONE.DEPTH", depth, "MODEL.BACKBONE.WITH_IBN", with_ibn,
            "MODEL.BACKBONE.FEAT_DIM", OSNET_CHANNELS[depth][3], "MODEL.HEADS.EMBEDDING_DIM", 512)


# Parameters at test time (without the classifier) from torchreid's model-zoo table; mult-adds at 256×128 from
# the OSNet paper's width-multiplier table (convolutions and linear layers; torchreid's table rounds them to
# 0.98 / 0.57 / 0.27 / 0.08 GFLOPs).
_PUBLISHED = {
    "x1_0": {"params_m": 2.2, "gmacs": 0.9789},
    "x0_75": {"params_m": 1.3, "gmacs": 0.5718},
    "x0_5": {"params_m": 0.6, "gmacs": 0.2729},
    "x0_25": {"params_m": 0.2, "gmacs": 0.0823},
}

for _depth in OSNET_CHANNELS:
    register_zoo_model(f"osnet_{_depth}", osnet_zoo_options("build_osnet_backbone", _depth),
                       published=_PUBLISHED[_depth])
register_zoo_model("osnet_ibn_x1_0", osnet_zoo_options("build_osnet_backbone", "x1_0", with_ibn=True),
                   published={"params_m": 2.2, "gmacs": 0.98})
