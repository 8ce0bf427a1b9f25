"""MuDeep, the multi-scale deep network (Qian et al., ICCV 2017), as torchreid's ``mudeep``.

Blocks ``block1`` … ``block5`` as torchreid: two 3×3 convolutions and a max pool, multi-scale layer A, a
reduction, multi-scale layer B (four 256-channel streams) and the saliency-weighted fusion, with torchreid's
extra 4×4 average pooling (a 16×8 map at 256×128). :class:`fastreid.modeling.heads.MuDeepHead` flattens that
map through a 4096-d fc layer, so the input size is fixed when the model is built (INPUT.SIZE_TRAIN).
"""
from typing import Sequence, Tuple, Union

import torch
from torch import nn
from torch.nn import functional as F

from .build import BACKBONE_REGISTRY
from .zoo import register_zoo_model

__all__ = ["MuDeep", "build_mudeep_backbone"]

Size = Union[int, Tuple[int, int]]


class ConvBlock(nn.Module):
    """Convolution (with bias), BatchNorm, ReLU; modules ``conv`` and ``bn`` as torchreid."""

    def __init__(self, in_c: int, out_c: int, k: Size, s: Size = 1, p: Size = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_c, out_c, k, stride=s, padding=p)
        self.bn = nn.BatchNorm2d(out_c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _chain(*blocks: Tuple) -> nn.Sequential:
    """ConvBlocks from (in, out, kernel, padding) tuples, stride 1; an ``nn.Module`` is taken as it is."""
    return nn.Sequential(*(b if isinstance(b, nn.Module) else ConvBlock(b[0], b[1], b[2], 1, b[3]) for b in blocks))


class ConvLayers(nn.Module):
    """Stem: two 3×3 ConvBlocks (48, 96) and a stride-2 max pool."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ConvBlock(3, 48, 3, 1, 1)
        self.conv2 = ConvBlock(48, 96, 3, 1, 1)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.conv2(self.conv1(x)))


class MultiScaleA(nn.Module):
    """Four streams of 24 channels (1×1→3×3, pool→1×1, 1×1, 1×1→3×3→3×3), concatenated: 96 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.stream1 = _chain((96, 96, 1, 0), (96, 24, 3, 1))
        self.stream2 = _chain(nn.AvgPool2d(3, stride=1, padding=1), (96, 24, 1, 0))
        self.stream3 = ConvBlock(96, 24, 1)
        self.stream4 = _chain((96, 16, 1, 0), (16, 24, 3, 1), (24, 24, 3, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.stream1(x), self.stream2(x), self.stream3(x), self.stream4(x)], 1)


class Reduction(nn.Module):
    """Stride-2 reduction: max pool (96), a 3×3 ConvBlock (96) and 1×1→3×3→3×3 (64), concatenated: 256."""

    def __init__(self) -> None:
        super().__init__()
        self.stream1 = nn.MaxPool2d(3, stride=2, padding=1)
        self.stream2 = ConvBlock(96, 96, 3, 2, 1)
        self.stream3 = nn.Sequential(ConvBlock(96, 48, 1), ConvBlock(48, 56, 3, 1, 1), ConvBlock(56, 64, 3, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.stream1(x), self.stream2(x), self.stream3(x)], 1)


class MultiScaleB(nn.Module):
    """Four 256-channel streams with factorised 1×3 / 3×1 convolutions, returned separately."""

    def __init__(self) -> None:
        super().__init__()
        self.stream1 = _chain(nn.AvgPool2d(3, stride=1, padding=1), (256, 256, 1, 0))
        self.stream2 = _chain((256, 64, 1, 0), (64, 128, (1, 3), (0, 1)), (128, 256, (3, 1), (1, 0)))
        self.stream3 = ConvBlock(256, 256, 1)
        self.stream4 = _chain((256, 64, 1, 0), (64, 64, (1, 3), (0, 1)), (64, 128, (3, 1), (1, 0)),
                              (128, 128, (1, 3), (0, 1)), (128, 256, (3, 1), (1, 0)))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return self.stream1(x), self.stream2(x), self.stream3(x), self.stream4(x)


class Fusion(nn.Module):
    """Saliency-based fusion: per-channel weights ``a1`` … ``a4`` of the four streams, summed, then torchreid's
    4×4 average pooling."""

    def __init__(self, channels: int = 256) -> None:
        super().__init__()
        for i in range(1, 5):
            setattr(self, f"a{i}", nn.Parameter(torch.rand(1, channels, 1, 1)))
        self.avgpool = nn.AvgPool2d(kernel_size=4, stride=4, padding=0)

    def forward(self, streams: Sequence[torch.Tensor]) -> torch.Tensor:
        weights = (self.a1, self.a2, self.a3, self.a4)
        return self.avgpool(sum(a * s for a, s in zip(weights, streams)))


class MuDeep(nn.Module):
    """MuDeep's convolutional part.

    Attributes:
        out_channels (int): 256.
    """

    def __init__(self) -> None:
        super().__init__()
        self.block1 = ConvLayers()
        self.block2 = MultiScaleA()
        self.block3 = Reduction()
        self.block4 = MultiScaleB()
        self.block5 = Fusion()
        self.out_channels = 256

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map B×3×H×W (H, W multiples of 16) to B×256×H/16×W/16."""
        if x.shape[2] % 16 or x.shape[3] % 16:
            raise ValueError(f"MuDeep needs input height and width divisible by 16, got {tuple(x.shape[2:])}")
        return self.block5(self.block4(self.block3(self.block2(self.block1(x)))))


@BACKBONE_REGISTRY.register()
def build_mudeep_backbone(cfg) -> MuDeep:
    """MuDeep (trained from scratch: there are no ImageNet weights; MODEL.BACKBONE.PRETRAIN is ignored)."""
    del cfg  # no options
    return MuDeep()


register_zoo_model(
    "mudeep",
    ("MODEL.BACKBONE.NAME", "build_mudeep_backbone", "MODEL.BACKBONE.FEAT_DIM", 256,
     "MODEL.HEADS.NAME", "MuDeepHead", "MODEL.HEADS.EMBEDDING_DIM", 4096),
)
