"""ShuffleNet v1 (Zhang et al., CVPR 2018), torchreid's ``shufflenet``: neither timm nor torchvision has it.

Module names follow torchreid's ``shufflenet`` (``conv1``, ``stage2`` … ``stage4``; blocks ``conv1``, ``bn1``,
``conv2``, ``bn2``, ``conv3``, ``bn3``, ``shortcut``), so its ImageNet file (``shufflenet-bee1b265.pth.tar``)
loads by name.
"""
from typing import Dict, Sequence

import torch
from torch import nn

from fastreid.layers import get_norm, memory_format_of
from fastreid.modeling.pretrained import init_pretrained

from .build import BACKBONE_REGISTRY
from .zoo import register_zoo_model

__all__ = ["ShuffleNet", "ShuffleNetBottleneck", "build_shufflenet_backbone", "channel_shuffle"]

# Output channels of stages 2-4 by number of groups (the paper's Table 1, scale 1×).
SHUFFLENET_CHANNELS: Dict[int, Sequence[int]] = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
_BLOCKS_PER_STAGE = (4, 8, 4)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups: B×(g·n)×H×W, group-major → B×(n·g)×H×W, member-major."""
    b, c, h, w = x.shape
    if memory_format_of(x) == torch.channels_last:  # shuffle the innermost (channel) axis, keeping the layout
        shuffled = x.permute(0, 2, 3, 1).reshape(b, h, w, groups, c // groups).transpose(3, 4).reshape(b, h, w, c)
        return shuffled.permute(0, 3, 1, 2)
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class ShuffleNetBottleneck(nn.Module):
    """Grouped 1×1 → channel shuffle → depthwise 3×3 → grouped 1×1, added to the input, or, in the first block
    of a stage (``out_channels`` > ``in_channels``), concatenated with a 3×3 average pool of the input.

    Args:
        in_channels: input channels.
        out_channels: output channels (in a stage's first block the convolution branch makes ``out - in``).
        stride: 1 or 2.
        groups: groups of the 1×1 convolutions.
        group_conv1x1: group the first 1×1 convolution (not in the first block, whose input has 24 channels).
        norm: norm name.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, groups: int, group_conv1x1: bool = True,
                 norm: str = "BN") -> None:
        super().__init__()
        if stride not in (1, 2) or (stride == 2 and in_channels == out_channels):
            raise ValueError(f"ShuffleNet block: stride must be 1 or 2, and 2 only where the channels grow; got "
                             f"stride {stride}, {in_channels} -> {out_channels} channels")
        self.groups = groups
        mid = out_channels // 4
        concat = out_channels != in_channels
        branch_out = out_channels - in_channels if concat else out_channels
        self.conv1 = nn.Conv2d(in_channels, mid, 1, groups=groups if group_conv1x1 else 1, bias=False)
        self.bn1 = get_norm(norm, mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = get_norm(norm, mid)
        self.conv3 = nn.Conv2d(mid, branch_out, 1, groups=groups, bias=False)
        self.bn3 = get_norm(norm, branch_out)
        self.relu = nn.ReLU(inplace=True)
        # With last stride 1 the first block of stage 4 concatenates an average pool of stride 1.
        self.shortcut = nn.AvgPool2d(3, stride, 1) if concat else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = channel_shuffle(self.relu(self.bn1(self.conv1(x))), self.groups)
        out = self.bn3(self.conv3(self.bn2(self.conv2(out))))
        if self.shortcut is not None:
            return self.relu(torch.cat([self.shortcut(x), out], 1))
        return self.relu(x + out)


class ShuffleNet(nn.Module):
    """ShuffleNet v1 at scale 1×: stem (3×3 stride-2 convolution, max pool), three stages of 4, 8, 4 blocks.

    Args:
        groups: groups of the 1×1 convolutions (1, 2, 3, 4 or 8; torchreid uses 3).
        last_stride: stride of stage 4 (2 as torchreid; 1 keeps a 16×8 map at 256×128).
        norm: norm name.

    Attributes:
        out_channels (int): channels of the output map (960 with 3 groups).
    """

    def __init__(self, groups: int = 3, last_stride: int = 2, norm: str = "BN") -> None:
        super().__init__()
        if groups not in SHUFFLENET_CHANNELS:
            raise KeyError(f"ShuffleNet groups must be one of {sorted(SHUFFLENET_CHANNELS)}, got {groups}")
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, 24, 3, 2, 1, bias=False), get_norm(norm, 24), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
        )
        in_channels = 24
        for i, (channels, blocks, stride) in enumerate(
            zip(SHUFFLENET_CHANNELS[groups], _BLOCKS_PER_STAGE, (2, 2, last_stride))
        ):
            stage = [ShuffleNetBottleneck(in_channels, channels, stride, groups, group_conv1x1=i > 0, norm=norm)]
            stage += [ShuffleNetBottleneck(channels, channels, 1, groups, norm=norm) for _ in range(1, blocks)]
            self.add_module(f"stage{i + 2}", nn.Sequential(*stage))
            in_channels = channels
        self.out_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map B×3×H×W images to the B×``out_channels``×H/32×W/32 map (H/16×W/16 with last stride 1)."""
        return self.stage4(self.stage3(self.stage2(self.conv1(x))))


def _parse_groups(depth: str) -> int:
    value = str(depth).lower()
    if not (value.startswith("g") and value[1:].isdigit() and int(value[1:]) in SHUFFLENET_CHANNELS):
        raise KeyError(
            f"build_shufflenet_backbone reads the number of groups from MODEL.BACKBONE.DEPTH as 'g<groups>'; got "
            f"'{depth}', expected one of {[f'g{g}' for g in SHUFFLENET_CHANNELS]}"
        )
    return int(value[1:])


@BACKBONE_REGISTRY.register()
def build_shufflenet_backbone(cfg) -> ShuffleNet:
    """ShuffleNet v1 (MODEL.BACKBONE.DEPTH "g3" for 3 groups, ...), reading LAST_STRIDE, NORM, PRETRAIN and
    PRETRAIN_PATH (torchreid's ImageNet file, 3 groups, from the torch hub cache)."""
    bb = cfg.MODEL.BACKBONE
    model = ShuffleNet(_parse_groups(bb.DEPTH), bb.LAST_STRIDE, bb.NORM)
    init_pretrained(model, bb.PRETRAIN, bb.PRETRAIN_PATH, ["shufflenet-bee1b265.pth.tar"])
    return model


register_zoo_model("shufflenet", ("MODEL.BACKBONE.NAME", "build_shufflenet_backbone", "MODEL.BACKBONE.DEPTH", "g3",
                                  "MODEL.BACKBONE.LAST_STRIDE", 2, "MODEL.BACKBONE.FEAT_DIM", 960),
                   published={"params_m": 0.9})  # torchreid's MODEL_ZOO.md, without the classifier
