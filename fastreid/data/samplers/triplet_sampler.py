"""P x K identity samplers: each rank's mini-batch holds P identities with K images each.

A global batch of ``world_size * P`` distinct identities is drawn from the shared seed and split by rank, so
ranks see disjoint identities at each step.
"""
from collections import defaultdict
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np

from .data_sampler import GlobalBatchSampler


def _index_by(labels: Sequence[int]) -> Dict[int, List[int]]:
    groups: Dict[int, List[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        groups[int(label)].append(i)
    return dict(sorted(groups.items()))


def _nearest(values: Sequence[int], target: int) -> List[int]:
    """The largest of ``values`` below ``target`` and the smallest above it (those that exist)."""
    below = [v for v in values if v < target]
    above = [v for v in values if v > target]
    return ([max(below)] if below else []) + ([min(above)] if above else [])


def pk_batch_problem(ims_per_batch: int, num_instance: int, world_size: int = 1) -> Optional[str]:
    """Why a P x K identity sampler cannot make batches of this size, or None when it can.

    Each of the ``world_size`` processes takes ``ims_per_batch // world_size`` images, which must be a positive
    multiple of K. fast-reid gives no meaning to other sizes (its sampler never completes a batch), so the
    message names both keys and the nearest valid values of each.

    Args:
        ims_per_batch: SOLVER.IMS_PER_BATCH, the global batch size.
        num_instance: DATALOADER.NUM_INSTANCE (K, images per identity).
        world_size: number of training processes.
    """
    if num_instance < 1:
        return f"DATALOADER.NUM_INSTANCE must be at least 1 (images per identity in a batch), got {num_instance}"
    mini = ims_per_batch // world_size
    if mini >= num_instance and mini % num_instance == 0:
        return None
    step = num_instance * world_size
    ims_options = _nearest([v for v in (ims_per_batch // step * step, ims_per_batch // step * step + step) if v > 0],
                           ims_per_batch)
    k_options = _nearest([d for d in range(2, mini + 1) if mini % d == 0], num_instance)
    hint = f"use SOLVER.IMS_PER_BATCH {' or '.join(map(str, ims_options))}"
    if k_options:
        hint += f", or DATALOADER.NUM_INSTANCE {' or '.join(map(str, k_options))}"
    return (
        f"SOLVER.IMS_PER_BATCH = {ims_per_batch} does not split into identities of DATALOADER.NUM_INSTANCE = "
        f"{num_instance} images: the per-process batch ({ims_per_batch} // {world_size} process(es) = {mini}) must "
        f"be a positive multiple of DATALOADER.NUM_INSTANCE with an identity sampler; {hint}"
    )


def identity_count_problem(num_ids: int, ims_per_batch: int, num_instance: int, world_size: int = 1) -> Optional[str]:
    """Why ``num_ids`` training identities cannot fill one P x K batch, or None when they can.

    A batch holds ``ims_per_batch // num_instance`` distinct identities (P per process times ``world_size``).

    Args:
        num_ids: distinct identities of the training set.
        ims_per_batch, num_instance, world_size: as in :func:`pk_batch_problem` (assumed valid).
    """
    mini = ims_per_batch // world_size
    needed = mini // num_instance * world_size
    if num_ids >= needed:
        return None
    largest = num_ids // world_size * num_instance * world_size
    fix = (f"set SOLVER.IMS_PER_BATCH to at most {largest}" if largest > 0
           else f"train on at least {world_size} identities")
    return (
        f"The train set has {num_ids} identities but each batch needs {needed} distinct identities (P = per-process "
        f"batch {mini} / DATALOADER.NUM_INSTANCE {num_instance}, times {world_size} process(es)): {fix} (lower "
        "SOLVER.IMS_PER_BATCH or raise DATALOADER.NUM_INSTANCE), or add training identities"
    )


class IdentitySampler(GlobalBatchSampler):
    """Base of P x K samplers; subclasses implement :meth:`_global_batches`.

    Args:
        pids: per-sample identity labels.
        mini_batch_size: per-rank batch size (a multiple of ``num_instance``).
        num_instance: K, images per identity.
        seed, rank, world_size, start: see :class:`InfiniteSampler`.
    """

    def __init__(self, pids: Sequence[int], mini_batch_size: int, num_instance: int, **kwargs) -> None:
        super().__init__(**kwargs)
        problem = pk_batch_problem(mini_batch_size * self._world_size, num_instance, self._world_size)
        if problem is None:
            problem = identity_count_problem(len(set(pids)), mini_batch_size * self._world_size, num_instance,
                                             self._world_size)
        if problem is not None:
            raise ValueError(problem)
        self._mini, self._k = mini_batch_size, num_instance
        self._p_all = mini_batch_size // num_instance * self._world_size
        self._by_pid = _index_by(pids)

    @classmethod
    def from_dataset(cls, dataset, *, mini_batch_size, num_instance, set_weight=None, **kwargs):
        return cls(dataset.pids, mini_batch_size, num_instance, **kwargs)

    def _take_k(self, indices: Sequence[int], rng: np.random.Generator) -> List[int]:
        if len(indices) >= self._k:
            return list(indices[: self._k])
        return list(indices) + rng.choice(indices, self._k - len(indices)).tolist()

class NaiveIdentitySampler(IdentitySampler):
    """Each epoch splits every identity's shuffled images into groups of K (padding short ones by resampling)
    and draws P identities at random among those with groups left, until fewer than P remain."""

    def _global_batches(self, rng: np.random.Generator) -> Iterator[List[int]]:
        while True:
            groups = {}
            for pid, idxs in self._by_pid.items():
                idxs = rng.permutation(idxs).tolist()
                if len(idxs) < self._k:
                    idxs = self._take_k(idxs, rng)
                groups[pid] = [idxs[i : i + self._k] for i in range(0, len(idxs) - self._k + 1, self._k)]
            avail = sorted(groups)
            while len(avail) >= self._p_all:
                chosen = rng.choice(avail, self._p_all, replace=False).tolist()
                yield [i for pid in chosen for i in groups[pid].pop()]
                avail = [pid for pid in avail if groups[pid]]


class BalancedIdentitySampler(IdentitySampler):
    """Each epoch visits identities in random order, P at a time; an identity's K images are taken round-robin
    over its cameras, so a batch covers as many cameras per identity as exist.

    Args:
        camids: per-sample camera labels.
    """

    def __init__(self, pids: Sequence[int], camids: Sequence[int], mini_batch_size: int, num_instance: int,
                 **kwargs) -> None:
        super().__init__(pids, mini_batch_size, num_instance, **kwargs)
        self._camids = list(camids)

    @classmethod
    def from_dataset(cls, dataset, *, mini_batch_size, num_instance, set_weight=None, **kwargs):
        return cls(dataset.pids, dataset.camids, mini_batch_size, num_instance, **kwargs)

    def _camera_balanced(self, idxs: List[int], rng: np.random.Generator) -> List[int]:
        by_cam = _index_by([self._camids[i] for i in idxs])
        per_cam = [rng.permutation([idxs[j] for j in members]).tolist() for members in by_cam.values()]
        per_cam = [per_cam[c] for c in rng.permutation(len(per_cam))]
        rounds = max(len(c) for c in per_cam)
        order = [c[r] for r in range(rounds) for c in per_cam if r < len(c)]
        return self._take_k(order, rng)

    def _global_batches(self, rng: np.random.Generator) -> Iterator[List[int]]:
        pids = list(self._by_pid)
        while True:
            order = rng.permutation(pids).tolist()
            for b in range(0, len(order) - self._p_all + 1, self._p_all):
                yield [i for pid in order[b : b + self._p_all] for i in self._camera_balanced(self._by_pid[pid], rng)]


class SetReWeightSampler(IdentitySampler):
    """P x K batches whose identities come from several training sets in proportion to ``set_weight``.

    Args:
        set_ids: per-sample index of the source dataset.
        set_weight: sampling weight per dataset; None or empty = proportional to each dataset's image count.
    """

    def __init__(self, pids: Sequence[int], set_ids: Sequence[int], mini_batch_size: int, num_instance: int,
                 set_weight: Optional[Sequence[float]] = None, **kwargs) -> None:
        super().__init__(pids, mini_batch_size, num_instance, **kwargs)
        pid_set = {int(p): int(s) for p, s in zip(pids, set_ids)}
        num_sets = max(pid_set.values()) + 1
        self._pids_of_set = [[p for p in self._by_pid if pid_set[p] == s] for s in range(num_sets)]
        if not set_weight:
            set_weight = np.bincount(np.asarray(set_ids), minlength=num_sets)
        if len(set_weight) != num_sets:
            raise ValueError(f"DATALOADER.SET_WEIGHT has {len(set_weight)} weights for {num_sets} training sets")
        weight = np.asarray(set_weight, dtype=np.float64)
        self._weight = weight / weight.sum()

    @classmethod
    def from_dataset(cls, dataset, *, mini_batch_size, num_instance, set_weight=None, **kwargs):
        return cls(dataset.pids, dataset.set_ids, mini_batch_size, num_instance, set_weight=set_weight, **kwargs)

    def _global_batches(self, rng: np.random.Generator) -> Iterator[List[int]]:
        sizes = [len(p) for p in self._pids_of_set]
        while True:
            counts = np.bincount(rng.choice(len(self._weight), self._p_all, p=self._weight), minlength=len(sizes))
            counts = np.minimum(counts, sizes)
            chosen = [int(p) for s, n in enumerate(counts) for p in rng.choice(self._pids_of_set[s], n, replace=False)]
            if len(chosen) < self._p_all:  # a set has fewer identities than drawn: fill from the others
                rest = [p for p in self._by_pid if p not in set(chosen)]
                chosen += rng.choice(rest, self._p_all - len(chosen), replace=False).tolist()
            chosen = rng.permutation(chosen).tolist()
            yield [i for pid in chosen for i in self._take_k(rng.permutation(self._by_pid[pid]).tolist(), rng)]
