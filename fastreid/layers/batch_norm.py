"""Normalization layers and ``get_norm``, the one place that turns a norm name into a module."""
import logging
from typing import Callable, Dict, List

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from fastreid.utils.logger import log_first_n

__all__ = ["GhostBatchNorm", "IBN", "get_norm", "NORM_NAMES"]


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


def _group_norm(channels: int) -> nn.Module:
    return nn.GroupNorm(32, channels)


def _sync_batch_norm(channels: int) -> nn.Module:
    # torch synchronises batch statistics only between CUDA devices; CPU processes each normalise their own.
    if not torch.cuda.is_available():
        log_first_n(logging.WARNING, "SyncBN needs CUDA devices; using per-process BatchNorm on CPU", n=1)
        return nn.BatchNorm2d(channels)
    return nn.SyncBatchNorm(channels)


_NORMS: Dict[str, Callable[[int], nn.Module]] = {
    "BN": nn.BatchNorm2d,
    "syncBN": _sync_batch_norm,
    "SyncBN": _sync_batch_norm,
    "GhostBN": GhostBatchNorm,
    "FrozenBN": FrozenBatchNorm2d,
    "GN": _group_norm,
}
NORM_NAMES: List[str] = sorted(_NORMS)


def get_norm(norm: str, out_channels: int, bias_freeze: bool = False) -> nn.Module:
    """Build a 2-d normalization layer by name.

    Args:
        norm: one of ``NORM_NAMES``: "BN", "syncBN"/"SyncBN", "GhostBN", "FrozenBN", "GN" (32 groups).
        out_channels: number of channels C of the B×C×H×W input.
        bias_freeze: zero the bias and exclude it from training (the BNNeck of reid heads).

    Returns:
        nn.Module: the layer, weight initialised to 1 and bias to 0.
    """
    if norm not in _NORMS:
        raise KeyError(f"Unknown norm '{norm}'; expected one of {NORM_NAMES}")
    layer = _NORMS[norm](out_channels)
    if bias_freeze:
        bias = getattr(layer, "bias", None)
        if bias is None:
            raise ValueError(f"Norm '{norm}' has no bias to freeze")
        with torch.no_grad():
            bias.zero_()
        bias.requires_grad_(False)
    return layer


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
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = get_norm(norm, planes - self.half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = torch.split(x, [self.half, x.size(1) - self.half], dim=1)
        return torch.cat([self.IN(first.contiguous()), self.BN(second.contiguous())], dim=1)
