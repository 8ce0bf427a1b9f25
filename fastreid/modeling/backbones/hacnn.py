"""HACNN, the Harmonious Attention CNN (Li et al., CVPR 2018), as torchreid's ``hacnn`` (designed for 160×64).

A global branch of three Inception stages, each followed by harmonious attention (``ha1`` … ``ha3``): soft
attention (spatial × channel) re-weights the map, hard attention predicts the translations of four horizontal
regions. A local branch crops those regions from the previous stage's output with a spatial transformer and runs
its own Inception stages (``local_conv1`` … ``local_conv3``), adding each stage's crops to the previous stage's
region features. The branches' maps differ in size, so the backbone returns their pooled vectors as one
B×5C×1×1 map (C = 384: the global vector, then the four regions), which
:class:`fastreid.modeling.heads.HACNNHead` splits (``fc_global``, ``fc_local`` and a classifier each). Module
names are torchreid's. The model is trained from scratch (MODEL.BACKBONE.PRETRAIN is ignored).
"""
from typing import List, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from .build import BACKBONE_REGISTRY
from .mudeep import ConvBlock
from .zoo import register_zoo_model

__all__ = ["HACNN", "REGION_SCALE", "HarmAttn", "InceptionA", "InceptionB", "build_hacnn_backbone", "region_grid"]


def _global_avg_pool(x: torch.Tensor) -> torch.Tensor:
    # torchreid's pooling (a window the size of the map), not adaptive pooling: the sums differ in the last bit,
    # which the batch norms of 1×1 maps amplify in training at small batches. int() keeps the window a constant
    # when traced for ONNX.
    return F.avg_pool2d(x, (int(x.shape[2]), int(x.shape[3])))


class InceptionA(nn.Module):
    """Four streams of ``out_channels // 4`` (three 1×1→3×3, one pool→1×1), concatenated; resolution kept."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = out_channels // 4
        for i in range(1, 4):
            setattr(self, f"stream{i}", nn.Sequential(ConvBlock(in_channels, mid, 1), ConvBlock(mid, mid, 3, p=1)))
        self.stream4 = nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1), ConvBlock(in_channels, mid, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.stream1(x), self.stream2(x), self.stream3(x), self.stream4(x)], 1)


class InceptionB(nn.Module):
    """Stride-2 Inception: 1×1→3×3/2, 1×1→3×3→3×3/2 (``out_channels // 4`` each) and pool/2→1×1 (half)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = out_channels // 4
        self.stream1 = nn.Sequential(ConvBlock(in_channels, mid, 1), ConvBlock(mid, mid, 3, s=2, p=1))
        self.stream2 = nn.Sequential(
            ConvBlock(in_channels, mid, 1), ConvBlock(mid, mid, 3, p=1), ConvBlock(mid, mid, 3, s=2, p=1)
        )
        self.stream3 = nn.Sequential(nn.MaxPool2d(3, stride=2, padding=1), ConvBlock(in_channels, mid * 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.stream1(x), self.stream2(x), self.stream3(x)], 1)


class SpatialAttn(nn.Module):
    """Channel mean → 3×3/2 conv → bilinear ×2 → 1×1 conv: a B×1×h×w map."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ConvBlock(1, 1, 3, s=2, p=1)
        self.conv2 = ConvBlock(1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x.mean(1, keepdim=True))
        y = F.interpolate(y, (y.shape[2] * 2, y.shape[3] * 2), mode="bilinear", align_corners=True)
        return self.conv2(y)


class ChannelAttn(nn.Module):
    """Squeeze-and-excitation by two 1×1 ConvBlocks: a B×C×1×1 map."""

    def __init__(self, in_channels: int, reduction_rate: int = 16) -> None:
        super().__init__()
        if in_channels % reduction_rate:
            raise ValueError(f"ChannelAttn: {in_channels} channels are not divisible by {reduction_rate}")
        self.conv1 = ConvBlock(in_channels, in_channels // reduction_rate, 1)
        self.conv2 = ConvBlock(in_channels // reduction_rate, in_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(_global_avg_pool(x)))


class SoftAttn(nn.Module):
    """Spatial × channel attention through a 1×1 ConvBlock and a sigmoid: weights the shape of the input."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.spatial_attn = SpatialAttn()
        self.channel_attn = ChannelAttn(in_channels)
        self.conv = ConvBlock(in_channels, in_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(self.spatial_attn(x) * self.channel_attn(x)))


class HardAttn(nn.Module):
    """Translations (x, y) of four regions, B×4×2 in [-1, 1], starting at the four horizontal quarters."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels, 4 * 2)
        nn.init.zeros_(self.fc.weight)
        with torch.no_grad():
            self.fc.bias.copy_(torch.tensor([0, -0.75, 0, -0.25, 0, 0.25, 0, 0.75]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(_global_avg_pool(x).flatten(1))).view(-1, 4, 2)


class HarmAttn(nn.Module):
    """Soft attention weights and hard-attention region translations of one stage's map."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.soft_attn = SoftAttn(in_channels)
        self.hard_attn = HardAttn(in_channels)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.soft_attn(x), self.hard_attn(x)


# Each region spans the full width and a quarter of the height: the (x, y) scale of its affine crop.
REGION_SCALE = (1.0, 0.25)
# Size each stage's region crops are resized to, as torchreid (fixed, whatever the input size).
_LOCAL_SIZES = ((24, 28), (12, 14), (6, 7))


def region_grid(translation: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The B×h×w×2 sampling grid of ``F.affine_grid`` (``align_corners=False``) for the affine map scaling by
    :data:`REGION_SCALE` and translating by ``translation`` (B×2), written out because ONNX has ``affine_grid``
    only from opset 20."""
    sx, sy = REGION_SCALE
    xs = (torch.arange(w, device=translation.device, dtype=translation.dtype) * 2 + 1) / w - 1
    ys = (torch.arange(h, device=translation.device, dtype=translation.dtype) * 2 + 1) / h - 1
    b = translation.shape[0]
    gx = sx * xs.view(1, 1, w) + translation[:, 0].view(b, 1, 1)
    gy = sy * ys.view(1, h, 1) + translation[:, 1].view(b, 1, 1)
    return torch.stack([gx.expand(b, h, w), gy.expand(b, h, w)], 3)


class HACNN(nn.Module):
    """HACNN's global and local branches (torchreid's ``learn_region=True``).

    Args:
        nchannels: channels of the three stages (after concatenation).

    Attributes:
        out_channels (int): 5 × ``nchannels[-1]`` (1920).
    """

    def __init__(self, nchannels: Sequence[int] = (128, 256, 384)) -> None:
        super().__init__()
        self.conv = ConvBlock(3, 32, 3, s=2, p=1)
        in_channels = 32
        for i, c in enumerate(nchannels, 1):
            self.add_module(f"inception{i}", nn.Sequential(InceptionA(in_channels, c), InceptionB(c, c)))
            self.add_module(f"ha{i}", HarmAttn(c))
            in_channels = c
        local_in = (32,) + tuple(nchannels[:-1])
        for i, (cin, c) in enumerate(zip(local_in, nchannels), 1):
            self.add_module(f"local_conv{i}", InceptionB(cin, c))
        self.out_channels = 5 * nchannels[-1]

    @staticmethod
    def _crop(x: torch.Tensor, translation: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
        """The region of ``x`` at ``translation`` (B×2) resized to ``size``, by a spatial transformer."""
        return F.interpolate(F.grid_sample(x, region_grid(translation, x.shape[2], x.shape[3]), align_corners=False),
                             size, mode="bilinear", align_corners=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map B×3×H×W (H, W multiples of 32; 160×64 by design) to B×5C×1×1: the pooled global map, then the
        four pooled region maps."""
        if x.shape[2] % 32 or x.shape[3] % 32:
            raise ValueError(f"HACNN needs input height and width divisible by 32 (designed for 160×64), "
                             f"got {tuple(x.shape[2:])}")
        x = self.conv(x)
        local: List[torch.Tensor] = []
        for i, size in enumerate(_LOCAL_SIZES, 1):
            stage = getattr(self, f"inception{i}")(x)
            attn, translations = getattr(self, f"ha{i}")(stage)
            local_conv = getattr(self, f"local_conv{i}")
            crops = [self._crop(x, translations[:, r], size) for r in range(4)]
            if local:  # after the first stage, each region adds its previous features
                crops = [c + prev for c, prev in zip(crops, local)]
            local = [local_conv(c) for c in crops]
            x = stage * attn
        pooled = [_global_avg_pool(t) for t in [x] + local]
        return torch.cat(pooled, 1)


@BACKBONE_REGISTRY.register()
def build_hacnn_backbone(cfg) -> HACNN:
    """HACNN (trained from scratch: there are no ImageNet weights; MODEL.BACKBONE.PRETRAIN is ignored)."""
    del cfg  # no options
    return HACNN()


register_zoo_model(
    "hacnn",
    ("MODEL.BACKBONE.NAME", "build_hacnn_backbone", "MODEL.BACKBONE.FEAT_DIM", 1920,
     "MODEL.HEADS.NAME", "HACNNHead", "MODEL.HEADS.EMBEDDING_DIM", 512),
    input_size=(160, 64),
    published={"params_m": 4.5, "gmacs": 0.5},
    published_notes={"params_m": (
        "torchreid's counter (`compute_model_complexity`) adds a module's parameters each time the module runs. "
        "HACNN's local stages (`local_conv1` … `local_conv3`, 0.53 M parameters) run once per region, four times "
        "per image, so torchreid counts them four times: 2.93 M + 3 × 0.53 M ≈ 4.5 M. fastreid counts each "
        "parameter once."
    )},
)
