"""Index samplers of the data loaders."""
from .build import SAMPLER_REGISTRY, build_train_sampler, sampler_name
from .data_sampler import GlobalBatchSampler, InferenceSampler, InfiniteSampler, TrainingSampler
from .imbalance_sampler import ImbalancedDatasetSampler
from .seeded_sampler import SeededSampler, sample_seed
from .triplet_sampler import (BalancedIdentitySampler, IdentitySampler, NaiveIdentitySampler, SetReWeightSampler,
                              identity_count_problem, pk_batch_problem)
