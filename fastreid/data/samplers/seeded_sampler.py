"""Per-sample augmentation seeds: random augmentation as a pure function of (seed, rank, stream position).

:class:`SeededSampler` wraps an :class:`InfiniteSampler` and yields ``(index, sample_seed)`` pairs;
:class:`fastreid.data.CommDataset` runs its transform with the global generators seeded from ``sample_seed``.
A sample's augmentation then depends neither on which loader worker processes it nor on whether the run was
resumed, so training batches are bitwise the same for any ``DATALOADER.NUM_WORKERS`` and after a resume.
"""
from typing import Dict, Iterator, Tuple

import numpy as np
from torch.utils.data import Sampler

from .data_sampler import InfiniteSampler


def sample_seed(seed: int, rank: int, position: int) -> int:
    """The 64-bit augmentation seed of the sample at ``position`` (counted from 0) of rank ``rank``'s stream.

    ``numpy.random.SeedSequence`` hashes the three numbers, so nearby inputs give unrelated seeds.
    """
    return int(np.random.SeedSequence([seed, rank, position]).generate_state(1, np.uint64)[0])


class SeededSampler(Sampler):
    """Pairs every index of an infinite sampler with its augmentation seed (see :func:`sample_seed`).

    Positions count from the start of the rank's stream, not from the sampler's ``start``, so a sampler
    resumed with ``start = n`` yields the same pairs as an unbroken one from its ``n``-th on.

    Args:
        sampler: the index sampler; ``seed``, ``rank``, ``state_dict`` and ``load_state_dict`` are its own.
    """

    def __init__(self, sampler: InfiniteSampler) -> None:
        self.sampler = sampler

    @property
    def seed(self) -> int:
        return self.sampler.seed

    @property
    def rank(self) -> int:
        return self.sampler.rank

    def state_dict(self) -> Dict[str, int]:
        return self.sampler.state_dict()

    def load_state_dict(self, state: Dict[str, int]) -> None:
        self.sampler.load_state_dict(state)

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        seed, rank, start = self.seed, self.rank, self.sampler.state_dict()["start"]
        for position, index in enumerate(self.sampler, start):
            yield index, sample_seed(seed, rank, position)
