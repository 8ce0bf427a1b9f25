"""The training-sampler registry and its builder."""
from typing import Optional, Sequence

from fastreid.utils.registry import Registry

from .data_sampler import InferenceSampler, InfiniteSampler, TrainingSampler
from .imbalance_sampler import ImbalancedDatasetSampler
from .triplet_sampler import BalancedIdentitySampler, NaiveIdentitySampler, SetReWeightSampler

SAMPLER_REGISTRY = Registry("SAMPLER")
SAMPLER_REGISTRY.__doc__ = """Training sampler classes by name (DATALOADER.SAMPLER_TRAIN).

An entry subclasses :class:`InfiniteSampler` and implements ``from_dataset(dataset, mini_batch_size=,
num_instance=, set_weight=, seed=, rank=, world_size=, start=)`` for a :class:`fastreid.data.CommDataset`.
"""
for _cls in (TrainingSampler, NaiveIdentitySampler, BalancedIdentitySampler, SetReWeightSampler,
             ImbalancedDatasetSampler):
    SAMPLER_REGISTRY.register(_cls)


def sampler_name(sampler_train: str, pk_sampler: bool, naive_way: bool) -> str:
    """The sampler chosen by DATALOADER.SAMPLER_TRAIN, else PK_SAMPLER / NAIVE_WAY."""
    if sampler_train:
        return sampler_train
    if pk_sampler:
        return "NaiveIdentitySampler" if naive_way else "BalancedIdentitySampler"
    return "TrainingSampler"


def build_train_sampler(
    name: str,
    dataset,
    *,
    mini_batch_size: int,
    num_instance: int,
    set_weight: Optional[Sequence[float]] = None,
    seed: Optional[int] = None,
    rank: Optional[int] = None,
    world_size: Optional[int] = None,
    start: int = 0,
) -> InfiniteSampler:
    """Build the registered training sampler ``name`` over a :class:`fastreid.data.CommDataset`.

    Returns:
        An infinite, rank-sharded sampler yielding dataset indices.
    """
    sampler = SAMPLER_REGISTRY.get(name).from_dataset(
        dataset, mini_batch_size=mini_batch_size, num_instance=num_instance, set_weight=set_weight,
        seed=seed, rank=rank, world_size=world_size, start=start,
    )
    if not isinstance(sampler, InfiniteSampler):
        raise TypeError(f"SAMPLER_REGISTRY entry '{name}' built a {type(sampler).__name__}, not an InfiniteSampler")
    return sampler
