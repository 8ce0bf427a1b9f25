"""MLFN, Multi-Level Factorisation Net (Chang et al., CVPR 2018), as torchreid's ``mlfn``.

Sixteen ResNeXt-like blocks (``feature.0`` … ``feature.15``); each block's factor-selection module (``fsm``) gates
the 32 groups of its grouped convolution and emits its 32 gates. The feature is the mean of the pooled last map
through ``fc_x`` and all 16 × 32 gates through ``fc_s``. Both projections belong to the backbone, which returns
that 1024-d feature as a B×1024×1×1 map: torchreid's ImageNet file (``mlfn-9cb5a267.pth.tar``) trains them, and
``pretrained=True`` loads them with the trunk, as torchreid does. The head is
:class:`fastreid.modeling.heads.TorchreidHead` (torchreid's ``classifier``). Module names are torchreid's.
"""
from typing import Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from fastreid.modeling.pretrained import load_pretrained_weights, resolve_pretrained_path

from .build import BACKBONE_REGISTRY
from .zoo import register_zoo_model

__all__ = ["MLFN", "MLFNBlock", "build_mlfn_backbone"]


class MLFNBlock(nn.Module):
    """A bottleneck block whose grouped 3×3 convolution's groups are scaled by factor-selection gates.

    Args:
        in_channels: input channels.
        out_channels: output channels (the bottleneck has half).
        stride: stride of the grouped convolution and the shortcut.
        fsm_channels: the two hidden widths of the factor-selection module.
        groups: groups of the 3×3 convolution, and gates.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, fsm_channels: Sequence[int],
                 groups: int = 32) -> None:
        super().__init__()
        self.groups = groups
        mid = out_channels // 2
        self.fm_conv1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.fm_bn1 = nn.BatchNorm2d(mid)
        self.fm_conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, bias=False, groups=groups)
        self.fm_bn2 = nn.BatchNorm2d(mid)
        self.fm_conv3 = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.fm_bn3 = nn.BatchNorm2d(out_channels)
        self.fsm = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, fsm_channels[0], 1),
            nn.BatchNorm2d(fsm_channels[0]),
            nn.ReLU(inplace=True),
            nn.Conv2d(fsm_channels[0], fsm_channels[1], 1),
            nn.BatchNorm2d(fsm_channels[1]),
            nn.ReLU(inplace=True),
            nn.Conv2d(fsm_channels[1], groups, 1),
            nn.BatchNorm2d(groups),
            nn.Sigmoid(),
        )
        self.downsample = None
        if in_channels != out_channels or stride > 1:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Returns the block's output and its B×groups×1×1 gates."""
        s = self.fsm(x)
        out = F.relu(self.fm_bn1(self.fm_conv1(x)), inplace=True)
        out = F.relu(self.fm_bn2(self.fm_conv2(out)), inplace=True)
        # Channel c of the grouped conv belongs to group c // (C / groups): each gate covers a contiguous run.
        out = out * s.repeat_interleave(out.shape[1] // self.groups, dim=1)
        out = F.relu(self.fm_bn3(self.fm_conv3(out)), inplace=True)
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(identity + out, inplace=True), s


# (out_channels, stride, fsm hidden widths) of the 16 blocks, by stage.
_STAGES = (
    (256, 3, (128, 64)),
    (512, 4, (256, 128)),
    (1024, 6, (512, 128)),
    (2048, 3, (512, 128)),
)


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels),
                         nn.ReLU(inplace=True))


class MLFN(nn.Module):
    """MLFN without its classifier: a 7×7 stem, the 16 factorisation blocks and the two projections.

    Args:
        groups: factors per block (32).
        embed_dim: width of ``fc_x`` and ``fc_s``, the feature (1024).

    Attributes:
        out_channels (int): ``embed_dim``.
    """

    def __init__(self, groups: int = 32, embed_dim: int = 1024) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        blocks, in_channels = [], 64
        for i, (out_channels, num_blocks, fsm) in enumerate(_STAGES):
            for j in range(num_blocks):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(MLFNBlock(in_channels, out_channels, stride, fsm, groups))
                in_channels = out_channels
        self.feature = nn.ModuleList(blocks)
        self.fc_x = _conv_bn_relu(in_channels, embed_dim)
        self.fc_s = _conv_bn_relu(groups * len(blocks), embed_dim)
        self.out_channels = embed_dim
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map B×3×H×W to the B×``embed_dim``×1×1 feature."""
        x = self.maxpool(F.relu(self.bn1(self.conv1(x)), inplace=True))
        gates = []
        for block in self.feature:
            x, s = block(x)
            gates.append(s)
        return (self.fc_x(F.adaptive_avg_pool2d(x, 1)) + self.fc_s(torch.cat(gates, 1))) * 0.5


@BACKBONE_REGISTRY.register()
def build_mlfn_backbone(cfg) -> MLFN:
    """MLFN; MODEL.BACKBONE.PRETRAIN loads torchreid's ImageNet file (``mlfn-9cb5a267.pth.tar``, from
    PRETRAIN_PATH or the torch hub cache), all but its 1000-class classifier."""
    model = MLFN()
    bb = cfg.MODEL.BACKBONE
    if bb.PRETRAIN:
        path = resolve_pretrained_path(bb.PRETRAIN_PATH, ["mlfn-9cb5a267.pth.tar"])
        load_pretrained_weights(model, path, ignore_unexpected=("classifier.weight", "classifier.bias"))
    return model


register_zoo_model(
    "mlfn",
    ("MODEL.BACKBONE.NAME", "build_mlfn_backbone", "MODEL.BACKBONE.FEAT_DIM", 1024),
    published={"params_m": 32.5, "gmacs": 2.8},
)
