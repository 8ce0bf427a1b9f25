"""torchreid's training-sampler names on fastreid's sampler registry.

Samplers torchreid has and fastreid's registry lacked are registered here as fastreid samplers (infinite,
rank-sharded, resumable): :class:`OrderedTrainingSampler` (``SequentialSampler``), :class:`CameraGroupSampler`
(``RandomDomainSampler``) and :class:`DatasetGroupSampler` (``RandomDatasetSampler``). The group samplers take
their images per group from DATALOADER.NUM_INSTANCE, the K of the identity samplers: ``batch_size //
num_cams`` (or ``// num_datasets``), as torchreid computes it.
"""
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np

from fastreid.data.samplers import SAMPLER_REGISTRY, GlobalBatchSampler, TrainingSampler

__all__ = ["CameraGroupSampler", "DatasetGroupSampler", "GroupSampler", "OrderedTrainingSampler", "TORCHREID_SAMPLERS",
           "resolve_train_sampler", "train_sampler_settings"]


class OrderedTrainingSampler(TrainingSampler):
    """Endless passes over the training set in its order (torchreid's ``SequentialSampler``), rank-sharded."""

    @classmethod
    def from_dataset(cls, dataset, *, mini_batch_size, num_instance, set_weight=None, **kwargs):
        return cls(len(dataset), shuffle=False, **kwargs)


class GroupSampler(GlobalBatchSampler):
    """Batches of ``mini_batch_size // images_per_group`` random groups with ``images_per_group`` images each.

    An epoch shuffles each group's images; every batch draws distinct groups at random and takes the next
    unused images of each; the epoch ends after a batch that leaves a drawn group with fewer images than a
    batch takes (torchreid's rule). With several ranks, a global batch of ``world_size`` times more groups is
    split by rank.

    Args:
        groups: per-sample group label (camera, source dataset, ...).
        mini_batch_size: per-rank batch size, a multiple of ``images_per_group``.
        images_per_group: images taken from each drawn group.
        seed, rank, world_size, start: see :class:`fastreid.data.samplers.InfiniteSampler`.
    """

    kind = "group"

    def __init__(self, groups: Sequence[int], mini_batch_size: int, images_per_group: int, **kwargs) -> None:
        super().__init__(**kwargs)
        if images_per_group < 1 or mini_batch_size % images_per_group:
            raise ValueError(f"{type(self).__name__}: the batch of {mini_batch_size} does not split into "
                             f"{self.kind}s of {images_per_group} images (DATALOADER.NUM_INSTANCE)")
        self._mini, self._k = mini_batch_size, images_per_group
        self._n = mini_batch_size * self._world_size // images_per_group
        by_group: Dict[int, List[int]] = {}
        for i, g in enumerate(groups):
            by_group.setdefault(int(g), []).append(i)
        self._by_group = dict(sorted(by_group.items()))
        if len(self._by_group) < self._n:
            raise ValueError(f"{type(self).__name__}: each batch needs {self._n} {self.kind}s but the train set has "
                             f"{len(self._by_group)}")
        short = [g for g, idxs in self._by_group.items() if len(idxs) < self._k]
        if short:
            raise ValueError(f"{type(self).__name__}: {self.kind}s {short} have fewer than {self._k} images")

    def _global_batches(self, rng: np.random.Generator) -> Iterator[List[int]]:
        names = list(self._by_group)
        while True:
            pools = {g: rng.permutation(idxs).tolist() for g, idxs in self._by_group.items()}
            epoch_over = False
            while not epoch_over:
                batch = []
                for g in (names[c] for c in rng.choice(len(names), self._n, replace=False)):
                    batch += pools[g][: self._k]
                    del pools[g][: self._k]
                    epoch_over |= len(pools[g]) < self._k
                yield batch


class CameraGroupSampler(GroupSampler):
    """torchreid's ``RandomDomainSampler``: each batch holds images of random cameras (visual domains)."""

    kind = "camera"

    @classmethod
    def from_dataset(cls, dataset, *, mini_batch_size, num_instance, set_weight=None, **kwargs):
        return cls(dataset.camids, mini_batch_size, num_instance, **kwargs)


class DatasetGroupSampler(GroupSampler):
    """torchreid's ``RandomDatasetSampler``: each batch holds images of random source datasets."""

    kind = "dataset"

    @classmethod
    def from_dataset(cls, dataset, *, mini_batch_size, num_instance, set_weight=None, **kwargs):
        return cls(dataset.set_ids, mini_batch_size, num_instance, **kwargs)


for _cls in (OrderedTrainingSampler, CameraGroupSampler, DatasetGroupSampler):
    if _cls.__name__ not in SAMPLER_REGISTRY:
        SAMPLER_REGISTRY.register(_cls)

#: torchreid's sampler names -> fastreid's registered samplers with the same sampling rule.
TORCHREID_SAMPLERS: Dict[str, str] = {
    "RandomSampler": "TrainingSampler",
    "SequentialSampler": "OrderedTrainingSampler",
    # P identities x K images, each identity's images split into groups of K per epoch: fastreid's naive rule.
    "RandomIdentitySampler": "NaiveIdentitySampler",
    "RandomDomainSampler": "CameraGroupSampler",
    "RandomDatasetSampler": "DatasetGroupSampler",
}


def resolve_train_sampler(name: str) -> str:
    """fastreid's SAMPLER_REGISTRY name for torchreid's ``train_sampler`` name (a fastreid name passes as is).

    Raises:
        KeyError: for an unknown name, listing the accepted ones.
    """
    if name in TORCHREID_SAMPLERS:
        return TORCHREID_SAMPLERS[name]
    if name in SAMPLER_REGISTRY:
        return name
    supported = ", ".join(f"{k} (-> {v})" for k, v in TORCHREID_SAMPLERS.items())
    raise KeyError(f"Unknown train_sampler '{name}'. torchreid's: {supported}; fastreid's: "
                   f"{', '.join(SAMPLER_REGISTRY.names())}")


def train_sampler_settings(name: str, batch_size: int, num_instances: int, num_cams: int,
                           num_datasets: int) -> Tuple[str, int]:
    """``(DATALOADER.SAMPLER_TRAIN, DATALOADER.NUM_INSTANCE)`` for torchreid's sampler arguments.

    Args:
        name: torchreid's ``train_sampler``.
        batch_size: images per batch.
        num_instances: images per identity (``RandomIdentitySampler``).
        num_cams, num_datasets: cameras / datasets per batch (``RandomDomainSampler`` / ``RandomDatasetSampler``).

    Raises:
        ValueError: ``batch_size`` is not divisible by ``num_cams`` / ``num_datasets`` (as torchreid requires).
    """
    sampler = resolve_train_sampler(name)
    groups = {"CameraGroupSampler": ("num_cams", num_cams), "DatasetGroupSampler": ("num_datasets", num_datasets)}
    if sampler not in groups:
        return sampler, int(num_instances)
    arg, count = groups[sampler]
    if count < 1 or batch_size % count:
        raise ValueError(f"train_sampler '{name}' needs batch_size ({batch_size}) divisible by {arg} ({count})")
    return sampler, batch_size // count
