"""Normalization layers, their registry ``NORM_REGISTRY`` and ``get_norm``, the one place that turns a norm name
into a module."""
import logging
from typing import List

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from fastreid.utils.logger import log_first_n
from fastreid.utils.registry import Registry

from .memory_format import memory_format_of

__all__ = ["GhostBatchNorm", "IBN", "InstanceNorm2d", "NORM_NAMES", "NORM_REGISTRY", "get_norm"]


class GhostBatchNorm(nn.BatchNorm2d):
    """Batch norm whose training statistics come from ``num_splits`` sub-batches ("ghost" batches).

    Each chunk of the batch is normalised with its own mean and variance; the running statistics are
    updated from the whole batch, so evaluation behaves like ``nn.BatchNorm2d``.
    """

    def __init__(self, num_features: int, num_splits: int = 4, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self.num_splits = num_splits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.num_splits <= 1:
            return super().forward(x)
        with torch.no_grad():
            # Updates the running statistics from the whole batch (the output is discarded).
            F.batch_norm(x, self.running_mean, self.running_var, None, None, True, self.momentum, self.eps)
            self.num_batches_tracked += 1
        chunks = x.chunk(self.num_splits, dim=0)
        return torch.cat(
            [F.batch_norm(c, None, None, self.weight, self.bias, True, 0.0, self.eps) for c in chunks], dim=0
        )


NORM_REGISTRY = Registry("NORM")
NORM_REGISTRY.__doc__ = """2-d normalization layers by the name configs use (MODEL.BACKBONE.NORM, MODEL.HEADS.NORM).

An entry is ``builder(channels) -> nn.Module`` normalising B×C×H×W inputs with C = ``channels``: a builder
function or an ``nn.Module`` class taking the channel count. :func:`get_norm` builds them.
"""

# Built-in builders are named as configs spell them (the registry key is the function name).


@NORM_REGISTRY.register()
def BN(channels: int) -> nn.Module:
    """``nn.BatchNorm2d``."""
    return nn.BatchNorm2d(channels)


@NORM_REGISTRY.register()
def SyncBN(channels: int) -> nn.Module:
    """``nn.SyncBatchNorm`` with CUDA; per-process ``nn.BatchNorm2d`` (with a warning) without."""
    # torch synchronises batch statistics only between CUDA devices; CPU processes each normalise their own.
    if not torch.cuda.is_available():
        log_first_n(logging.WARNING, "SyncBN needs CUDA devices; using per-process BatchNorm on CPU", n=1)
        return nn.BatchNorm2d(channels)
    return nn.SyncBatchNorm(channels)


NORM_REGISTRY.register_alias("syncBN", "SyncBN")


@NORM_REGISTRY.register()
def GhostBN(channels: int) -> nn.Module:
    """:class:`GhostBatchNorm` with its default 4 splits."""
    return GhostBatchNorm(channels)


@NORM_REGISTRY.register()
def FrozenBN(channels: int) -> nn.Module:
    """torchvision's ``FrozenBatchNorm2d`` (fixed statistics and affine parameters)."""
    return FrozenBatchNorm2d(channels)


@NORM_REGISTRY.register()
def GN(channels: int) -> nn.Module:
    """``nn.GroupNorm`` with 32 groups."""
    return nn.GroupNorm(32, channels)


# The built-in names; NORM_REGISTRY.names() also lists those registered later.
NORM_NAMES: List[str] = sorted(NORM_REGISTRY.names())


def get_norm(norm: str, out_channels: int, bias_freeze: bool = False) -> nn.Module:
    """Build a 2-d normalization layer by name.

    Args:
        norm: a name in :data:`NORM_REGISTRY`: built in are "BN", "syncBN"/"SyncBN", "GhostBN", "FrozenBN"
            and "GN" (32 groups).
        out_channels: number of channels C of the B×C×H×W input.
        bias_freeze: zero the bias and exclude it from training (the BNNeck of reid heads).

    Returns:
        nn.Module: the layer, weight initialised to 1 and bias to 0.

    Raises:
        KeyError: for an unregistered name, listing the registered ones.
        TypeError: when the registered builder does not return an ``nn.Module``.
    """
    layer = NORM_REGISTRY.get(norm)(out_channels)
    if not isinstance(layer, nn.Module):
        raise TypeError(f"NORM_REGISTRY entry '{norm}' built a {type(layer).__name__}, not an nn.Module")
    if bias_freeze:
        bias = getattr(layer, "bias", None)
        if bias is None:
            raise ValueError(f"Norm '{norm}' has no bias to freeze")
        with torch.no_grad():
            bias.zero_()
        bias.requires_grad_(False)
    return layer


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` whose output has the layout of its input.

    torch computes instance norm in NCHW only: it copies a channels-last input to NCHW and returns NCHW, which
    would leave the rest of a channels-last network in NCHW. This layer converts its result back, so the
    conversion stays around this one layer. (Group norm with one channel per group computes the same in
    channels-last without copies, but its CPU kernels measured 1.6-1.8x slower in float32 and 6-8x slower in
    bfloat16 than the two copies and the NCHW kernel.)
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).contiguous(memory_format=memory_format_of(x))


class IBN(nn.Module):
    """Instance-batch normalization (IBN-a, Pan et al. 2018).

    The first half of the channels gets instance norm (affine), the rest the chosen norm. Sub-module names
    ``IN`` and ``BN`` match the published IBN-Net weights.

    Args:
        planes: channels C of the B×C×H×W input.
        norm: name of the norm for the second half (see :func:`get_norm`).
    """

    def __init__(self, planes: int, norm: str = "BN") -> None:
        super().__init__()
        self.half = planes // 2
        self.IN = InstanceNorm2d(self.half, affine=True)
        self.BN = get_norm(norm, planes - self.half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = torch.split(x, [self.half, x.size(1) - self.half], dim=1)
        # Instance norm copies its input itself; the norm of the other half gets a dense copy in x's layout.
        return torch.cat([self.IN(first), self.BN(second.contiguous(memory_format=memory_format_of(x)))], dim=1)
