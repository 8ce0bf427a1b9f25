"""Temporal pooling of per-frame feature maps into one map per tracklet, registered in ``TEMPORAL_POOL_REGISTRY``.

Every pool maps ``B x S x C x ...`` (S frames per tracklet, any trailing dims) to ``B x C x ...``. Besides
``forward``, :meth:`TemporalPool.pool_chunks` pools frames given in consecutive chunks, holding one chunk and a
``B x C x ...`` running state at a time: this is how a video model bounds memory on long tracklets, and it gives
the same result (up to float rounding) for any chunking.
"""
from typing import Callable, Iterable, Optional, Tuple

import torch
from torch import nn

from fastreid.layers import memory_format_of
from fastreid.utils.registry import Registry

__all__ = [
    "TEMPORAL_POOL_REGISTRY",
    "TemporalAttentionPool",
    "TemporalAvgPool",
    "TemporalMaxPool",
    "TemporalPool",
    "build_temporal_pool",
]

TEMPORAL_POOL_REGISTRY = Registry("TEMPORAL_POOL")
TEMPORAL_POOL_REGISTRY.__doc__ = """Temporal pooling layers by class name (aliases "avg", "max", "attention"),
built as ``cls(channels)``; each maps B×S×C×... to B×C×... (MODEL.TEMPORAL_POOL names one)."""


def _over_frames(reduce: Callable[..., torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``reduce(x, dim=1)`` (e.g. ``torch.sum``) over the frames of ``B x S x C x h x w`` ``x``, in the frames'
    layout: torch's reductions return contiguous results, so channels-last frames are reduced as
    ``B x S x h x w x C`` and the result is viewed back as a channels-last ``B x C x h x w``."""
    if x.dim() == 5 and memory_format_of(x[:, 0]) == torch.channels_last:
        return reduce(x.movedim(2, -1), dim=1).movedim(-1, 1)
    return reduce(x, dim=1)


class TemporalPool(nn.Module):
    """Base class: pools frames with a running state ``init`` → ``update`` per chunk → ``finish``.

    Args:
        channels: C, the per-frame feature channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: ``B x S x C x ...`` per-frame features, S >= 1.

        Returns:
            ``B x C x ...`` pooled features.
        """
        return self.pool_chunks([x])

    def pool_chunks(self, chunks: Iterable[torch.Tensor]) -> torch.Tensor:
        """Pool the frames of ``chunks`` (each ``B x s_i x C x ...``, consecutive frames of the same B tracklets)
        as ``forward`` pools their concatenation along dim 1, keeping only a running state between chunks."""
        state = None
        for chunk in chunks:
            if chunk.dim() < 3 or chunk.size(1) == 0:
                raise ValueError(f"Temporal pooling needs B x S x C x ... features with S >= 1, got "
                                 f"{tuple(chunk.shape)}")
            state = self.update(state, chunk)
        if state is None:
            raise ValueError("Temporal pooling got no frames")
        return self.finish(state)

    def update(self, state: Optional[Tuple[torch.Tensor, ...]], chunk: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """The running state after the frames of ``chunk`` (``state`` is None before the first chunk)."""
        raise NotImplementedError

    def finish(self, state: Tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The pooled ``B x C x ...`` features of a final running state."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"channels={self.channels}"


@TEMPORAL_POOL_REGISTRY.register()
class TemporalAvgPool(TemporalPool):
    """The mean over frames (torchreid's ``pooling_method="avg"``)."""

    def update(self, state, chunk):
        total = _over_frames(torch.sum, chunk)
        if state is None:
            return total, chunk.size(1)
        return state[0] + total, state[1] + chunk.size(1)

    def finish(self, state):
        return state[0] / state[1]


@TEMPORAL_POOL_REGISTRY.register()
class TemporalMaxPool(TemporalPool):
    """The element-wise maximum over frames (torchreid's ``pooling_method="max"``)."""

    def update(self, state, chunk):
        peak = _over_frames(torch.amax, chunk)
        return (peak,) if state is None else (torch.maximum(state[0], peak),)

    def finish(self, state):
        return state[0]


@TEMPORAL_POOL_REGISTRY.register()
class TemporalAttentionPool(TemporalPool):
    """A learned weighted mean over frames: ``sum_t softmax_t(score(x_t)) * x_t``.

    A frame's score is a small MLP (C → C/r → 1, ReLU) of its spatially averaged features; the last layer starts
    at zero, so an untrained pool is the plain mean. Chunks are combined with a running maximum score (an
    online softmax), so chunking changes only float rounding.

    Args:
        channels: C.
        reduction: r, the hidden width divisor (hidden width at least 8).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__(channels)
        hidden = max(channels // reduction, 8)
        self.score = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))
        nn.init.zeros_(self.score[2].weight)
        nn.init.zeros_(self.score[2].bias)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """``B x S`` unnormalised frame scores of ``B x S x C x ...`` features."""
        pooled = x.flatten(3).mean(dim=3) if x.dim() > 3 else x
        return self.score(pooled).squeeze(-1)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """``B x S`` frame weights (each row sums to 1) of ``B x S x C x ...`` features."""
        return self.scores(x).softmax(dim=1)

    def update(self, state, chunk):
        scores = self.scores(chunk)
        peak = scores.amax(dim=1).detach()
        if state is not None:
            peak = torch.maximum(peak, state[2])
        w = (scores - peak[:, None]).exp()
        shape = (*w.shape, *([1] * (chunk.dim() - 2)))
        num, den = _over_frames(torch.sum, w.view(shape) * chunk), w.sum(dim=1)
        if state is not None:
            rescale = (state[2] - peak).exp()
            num = num + state[0] * rescale.view(-1, *([1] * (num.dim() - 1)))
            den = den + state[1] * rescale
        return num, den, peak

    def finish(self, state):
        num, den, _ = state
        return num / den.view(-1, *([1] * (num.dim() - 1)))


TEMPORAL_POOL_REGISTRY.register_alias("avg", "TemporalAvgPool")
TEMPORAL_POOL_REGISTRY.register_alias("max", "TemporalMaxPool")
TEMPORAL_POOL_REGISTRY.register_alias("attention", "TemporalAttentionPool")


def build_temporal_pool(name: str, channels: int) -> TemporalPool:
    """The temporal pool registered as ``name`` (MODEL.TEMPORAL_POOL) for ``channels``-channel frame features.

    Raises:
        KeyError: an unregistered name, listing the registered ones.
        TypeError: the registered object does not build a :class:`TemporalPool`.
    """
    pool = TEMPORAL_POOL_REGISTRY.get(name)(channels)
    if not isinstance(pool, TemporalPool):
        raise TypeError(f"MODEL.TEMPORAL_POOL '{name}' built {type(pool).__name__}, not a TemporalPool")
    return pool
