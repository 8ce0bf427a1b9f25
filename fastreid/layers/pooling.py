"""Global pooling layers of reid heads, registered in ``POOLING_REGISTRY`` under both fast-reid spellings.

Every layer maps a B×C×H×W feature map to B×C'×1×1 (``Identity`` passes its input through unchanged, for
backbones that already pool, e.g. a ViT's class token given as B×C×1×1).
"""
import torch
import torch.nn.functional as F
from torch import nn

from fastreid.utils.registry import Registry

__all__ = [
    "POOLING_REGISTRY",
    "build_pooling",
    "GlobalAvgPool",
    "GlobalMaxPool",
    "GeneralizedMeanPooling",
    "GeneralizedMeanPoolingP",
    "AdaptiveAvgMaxPool",
    "ClipGlobalAvgPool",
    "Identity",
    "Flatten",
]

POOLING_REGISTRY = Registry("POOLING")
POOLING_REGISTRY.__doc__ = """Pooling layers by class name; each is built with no arguments and maps
B×C×H×W to B×C'×1×1. MODEL.HEADS.POOL_LAYER names one."""


@POOLING_REGISTRY.register()
class GlobalAvgPool(nn.AdaptiveAvgPool2d):
    def __init__(self) -> None:
        super().__init__(1)


@POOLING_REGISTRY.register()
class GlobalMaxPool(nn.AdaptiveMaxPool2d):
    def __init__(self) -> None:
        super().__init__(1)


@POOLING_REGISTRY.register()
class GeneralizedMeanPooling(nn.Module):
    """GeM pooling (Radenović et al. 2018): ``(mean(clamp(x, eps) ** p)) ** (1 / p)`` with a fixed p.

    p = 1 is average pooling, p → ∞ approaches max pooling.
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = p
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x.clamp(min=self.eps).pow(self.p), 1).pow(1.0 / self.p)

    def extra_repr(self) -> str:
        p = self.p.detach().item() if isinstance(self.p, torch.Tensor) else self.p
        return f"p={p:.4f}, eps={self.eps}"


@POOLING_REGISTRY.register()
class GeneralizedMeanPoolingP(GeneralizedMeanPooling):
    """GeM pooling with a learnable exponent p (initialised to 3)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__(p, eps)
        self.p = nn.Parameter(torch.ones(1) * p)


@POOLING_REGISTRY.register()
class AdaptiveAvgMaxPool(nn.Module):
    """Sum of global average and global max pooling."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x, 1) + F.adaptive_max_pool2d(x, 1)


@POOLING_REGISTRY.register()
class ClipGlobalAvgPool(nn.Module):
    """Global average pooling clipped to [0, 1]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x, 1).clamp(min=0.0, max=1.0)


@POOLING_REGISTRY.register()
class Identity(nn.Identity):
    pass


@POOLING_REGISTRY.register()
class Flatten(nn.Module):
    """Flattens the whole map into channels: B×C×H×W → B×(C·H·W)×1×1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.size(0), -1, 1, 1)


for _alias, _name in {
    "avgpool": "GlobalAvgPool",
    "maxpool": "GlobalMaxPool",
    "gempool": "GeneralizedMeanPooling",
    "gempoolP": "GeneralizedMeanPoolingP",
    "avgmaxpool": "AdaptiveAvgMaxPool",
    "clipavgpool": "ClipGlobalAvgPool",
    "identity": "Identity",
    "flatten": "Flatten",
}.items():
    POOLING_REGISTRY.register_alias(_alias, _name)


def build_pooling(name: str) -> nn.Module:
    """Build the pooling layer registered (or aliased) as ``name``."""
    return POOLING_REGISTRY.get(name)()
