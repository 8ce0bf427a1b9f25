"""Stochastic depth: ``DropPath`` drops a residual branch for whole samples during training."""
import torch
from torch import nn

__all__ = ["DropPath", "drop_path"]


def drop_path(x: torch.Tensor, rate: float = 0.0, training: bool = False) -> torch.Tensor:
    """Zero each sample of ``x`` with probability ``rate`` and scale the kept ones by ``1 / (1 - rate)``.

    Args:
        x: a residual branch's output, B×… (any trailing shape).
        rate: drop probability in [0, 1).
        training: identity when False.

    Returns:
        Tensor of the shape of ``x``; the expectation over the random mask equals ``x``.
    """
    if rate == 0.0 or not training:
        return x
    keep = 1.0 - rate
    mask = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x * mask / keep


class DropPath(nn.Module):
    """Module form of :func:`drop_path`, active in training mode only.

    Args:
        rate: probability of dropping a sample's branch.
    """

    def __init__(self, rate: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"drop path rate must be in [0, 1), got {rate}")
        self.rate = float(rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.rate, self.training)

    def extra_repr(self) -> str:
        return f"rate={self.rate}"
