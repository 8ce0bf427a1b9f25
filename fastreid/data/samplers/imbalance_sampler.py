"""Class-balanced sampling: every identity is equally likely, whatever its image count."""
import itertools
from typing import Iterator, Sequence

import numpy as np

from .data_sampler import InfiniteSampler


class ImbalancedDatasetSampler(InfiniteSampler):
    """Endless sampling with replacement, each index weighted by 1 / (images of its identity).

    Args:
        pids: per-sample identity labels.
        seed, rank, world_size, start: see :class:`InfiniteSampler`.
    """

    def __init__(self, pids: Sequence[int], **kwargs) -> None:
        super().__init__(**kwargs)
        pids = np.asarray(pids)
        if pids.size == 0:
            raise ValueError("ImbalancedDatasetSampler needs a non-empty dataset")
        _, inverse, counts = np.unique(pids, return_inverse=True, return_counts=True)
        weight = 1.0 / counts[inverse]
        self._p = weight / weight.sum()

    @classmethod
    def from_dataset(cls, dataset, *, mini_batch_size, num_instance, set_weight=None, **kwargs):
        return cls(dataset.pids, **kwargs)

    def _global_stream(self) -> Iterator[int]:
        rng = np.random.default_rng(self._seed)
        while True:
            yield from rng.choice(len(self._p), size=len(self._p), p=self._p).tolist()

    def _rank_stream(self) -> Iterator[int]:
        return itertools.islice(self._global_stream(), self._rank, None, self._world_size)
