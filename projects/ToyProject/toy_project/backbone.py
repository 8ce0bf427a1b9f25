"""``TinyConvNet``: a four-stage convolutional backbone small enough to train in seconds on a CPU."""
import torch
from torch import nn

from fastreid.layers import get_norm
from fastreid.modeling import BACKBONE_REGISTRY

__all__ = ["TinyConvNet", "build_tiny_convnet_backbone"]


class TinyConvNet(nn.Module):
    """Four 3×3 convolution → norm → ReLU stages of widths C/8, C/4, C/2, C.

    The first three stages halve the resolution; the last one uses ``last_stride``.

    Args:
        out_channels: C, channels of the output map (a multiple of 8).
        last_stride: stride of the last stage.
        norm: norm name (see :func:`fastreid.layers.get_norm`).

    Attributes:
        out_channels (int): C, read by the heads.
    """

    def __init__(self, *, out_channels: int = 64, last_stride: int = 1, norm: str = "BN") -> None:
        super().__init__()
        if out_channels % 8:
            raise ValueError(f"TinyConvNet needs out_channels divisible by 8, got {out_channels}")
        layers = []
        in_channels = 3
        for width, stride in zip((out_channels // 8, out_channels // 4, out_channels // 2, out_channels),
                                 (2, 2, 2, last_stride)):
            layers += [nn.Conv2d(in_channels, width, 3, stride, 1, bias=False), get_norm(norm, width), nn.ReLU(True)]
            in_channels = width
        self.body = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map B×3×H×W images to the B×C×H/8×W/8 map (H/16×W/16 with last stride 2)."""
        return self.body(x)


@BACKBONE_REGISTRY.register()
def build_tiny_convnet_backbone(cfg) -> TinyConvNet:
    """TinyConvNet with C = MODEL.BACKBONE.FEAT_DIM, MODEL.BACKBONE.LAST_STRIDE and MODEL.BACKBONE.NORM."""
    bb = cfg.MODEL.BACKBONE
    return TinyConvNet(out_channels=bb.FEAT_DIM, last_stride=bb.LAST_STRIDE, norm=bb.NORM)
