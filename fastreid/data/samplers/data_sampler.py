"""Index samplers: the infinite, rank-sharded, resumable base and the plain training / inference samplers.

Resume: an infinite sampler's stream is a pure function of ``(seed, rank, world_size)``; ``start`` skips the
first ``start`` indices of this rank's stream. A trainer resuming after ``it`` iterations of per-rank batch
``b`` rebuilds the sampler with the saved seed and ``start = it * b`` (or calls
``load_state_dict({"seed": seed, "start": it * b})`` before iterating) and gets exactly the batches an
uninterrupted run would have produced.
"""
import itertools
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
from torch.utils.data import Sampler

from fastreid.utils import comm


class InfiniteSampler(Sampler):
    """Base of infinite samplers: seed shared by all ranks, rank sharding, skip-ahead for exact resume.

    Subclasses implement :meth:`_rank_stream`, the endless index sequence of this rank.

    Args:
        seed: RNG seed, the same on all ranks; None draws one shared across ranks (``comm.shared_random_seed``).
        rank, world_size: this process's shard; default from ``fastreid.utils.comm``.
        start: number of this rank's indices to skip (see the module docstring).
    """

    def __init__(
        self, seed: Optional[int] = None, rank: Optional[int] = None, world_size: Optional[int] = None, start: int = 0
    ) -> None:
        self._seed = int(comm.shared_random_seed() if seed is None else seed)
        self._rank = comm.get_rank() if rank is None else int(rank)
        self._world_size = comm.get_world_size() if world_size is None else int(world_size)
        if not 0 <= self._rank < self._world_size:
            raise ValueError(f"rank {self._rank} is outside world size {self._world_size}")
        self._start = int(start)

    @classmethod
    def from_dataset(cls, dataset, *, mini_batch_size: int, num_instance: int, set_weight=None, **kwargs):
        """Build from a :class:`fastreid.data.CommDataset`; ``kwargs`` are seed / rank / world_size / start.

        The batch arguments are accepted by every sampler so that the builder calls all of them alike.
        """
        raise NotImplementedError

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def rank(self) -> int:
        return self._rank

    def state_dict(self) -> Dict[str, int]:
        """``{"seed", "start"}``: rebuild with these (start advanced by the indices consumed) to resume."""
        return {"seed": self._seed, "start": self._start}

    def load_state_dict(self, state: Dict[str, int]) -> None:
        """Set seed and start; takes effect for iterators created afterwards."""
        self._seed, self._start = int(state["seed"]), int(state["start"])

    def _rank_stream(self) -> Iterator[int]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[int]:
        yield from itertools.islice(self._rank_stream(), self._start, None)


class GlobalBatchSampler(InfiniteSampler):
    """Base of samplers that draw whole global batches (every rank's samples together) and give each rank its
    slice, so that the ranks' batches together follow the sampler's rule.

    Subclasses set ``self._mini`` (the per-rank batch size) and implement :meth:`_global_batches`, an endless
    iterator of global batches (lists of ``world_size * _mini`` indices) drawn from ``rng``.
    """

    _mini: int

    def _global_batches(self, rng: np.random.Generator) -> Iterator[List[int]]:
        raise NotImplementedError

    def _rank_stream(self) -> Iterator[int]:
        lo = self._rank * self._mini
        for batch in self._global_batches(np.random.default_rng(self._seed)):
            yield from batch[lo : lo + self._mini]


class TrainingSampler(InfiniteSampler):
    """Endless reshuffled passes over ``range(size)``; rank ``r`` takes every ``world_size``-th index.

    Args:
        size: dataset length.
        shuffle: reshuffle every pass (else ``0..size-1`` repeated).
        seed, rank, world_size, start: see :class:`InfiniteSampler`.
    """

    def __init__(self, size: int, shuffle: bool = True, **kwargs) -> None:
        if size <= 0:
            raise ValueError(f"TrainingSampler needs a non-empty dataset, got size {size}")
        super().__init__(**kwargs)
        self._size, self._shuffle = int(size), shuffle

    @classmethod
    def from_dataset(cls, dataset, *, mini_batch_size, num_instance, set_weight=None, **kwargs):
        return cls(len(dataset), **kwargs)

    def _global_stream(self) -> Iterator[int]:
        rng = np.random.default_rng(self._seed)
        while True:
            order = rng.permutation(self._size) if self._shuffle else np.arange(self._size)
            yield from order.tolist()

    def _rank_stream(self) -> Iterator[int]:
        return itertools.islice(self._global_stream(), self._rank, None, self._world_size)


class InferenceSampler(Sampler):
    """Ordered, contiguous shard of ``range(size)`` per rank; shards cover every index exactly once.

    Args:
        size: dataset length.
        rank, world_size: default from ``fastreid.utils.comm``.
    """

    def __init__(self, size: int, rank: Optional[int] = None, world_size: Optional[int] = None) -> None:
        rank = comm.get_rank() if rank is None else rank
        world_size = comm.get_world_size() if world_size is None else world_size
        sizes = [size // world_size + int(r < size % world_size) for r in range(world_size)]
        begin = sum(sizes[:rank])
        self._indices: Sequence[int] = range(begin, begin + sizes[rank])

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices)

    def __len__(self) -> int:
        return len(self._indices)
