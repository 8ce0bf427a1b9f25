import itertools
from collections import Counter

import numpy as np
import pytest

from fastreid.data.samplers import (SAMPLER_REGISTRY, BalancedIdentitySampler, ImbalancedDatasetSampler,
                                    InferenceSampler, NaiveIdentitySampler, SetReWeightSampler, TrainingSampler,
                                    sampler_name)

# 10 identities with 1..5 images each over 3 cameras.
PIDS = [p for p in range(10) for _ in range(1 + p % 5)]
CAMS = [i % 3 for i in range(len(PIDS))]


def _take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


def test_training_sampler_epochs_ranks_and_resume():
    s = TrainingSampler(7, seed=3, rank=0, world_size=1)
    first = _take(s, 21)
    assert all(sorted(first[i:i + 7]) == list(range(7)) for i in (0, 7, 14))
    shards = [_take(TrainingSampler(7, seed=3, rank=r, world_size=2), 7) for r in range(2)]
    assert shards[0] == first[0:14:2] and shards[1] == first[1:14:2]
    assert _take(TrainingSampler(7, seed=3, rank=0, world_size=1, start=5), 10) == first[5:15]
    s.load_state_dict({"seed": 3, "start": 9})
    assert _take(s, 3) == first[9:12] and s.state_dict() == {"seed": 3, "start": 9}


@pytest.mark.parametrize("size,world", [(10, 3), (7, 2), (2, 4), (9, 1)])
def test_inference_sampler_covers_each_index_once(size, world):
    shards = [list(InferenceSampler(size, rank=r, world_size=world)) for r in range(world)]
    assert sum(shards, []) == list(range(size))


def _pk_checks(sampler_cls, extra=(), world=1, mini=8, k=2, steps=30):
    streams = [_take(sampler_cls(PIDS, *extra, mini, k, seed=1, rank=r, world_size=world), mini * steps)
               for r in range(world)]
    for step in range(steps):
        batches = [s[step * mini:(step + 1) * mini] for s in streams]
        id_sets = []
        for b in batches:
            counts = Counter(PIDS[i] for i in b)
            assert len(counts) == mini // k and set(counts.values()) == {k}  # P x K
            id_sets.append(set(counts))
        if world > 1:
            assert not set.intersection(*id_sets)  # ranks see disjoint identities at each step
    return streams


@pytest.mark.parametrize("cls,extra", [(NaiveIdentitySampler, ()), (BalancedIdentitySampler, (CAMS,))])
def test_pk_samplers_structure_coverage_and_ranks(cls, extra):
    stream = _pk_checks(cls, extra)[0]
    assert set(PIDS[i] for i in stream) == set(range(10))  # every identity within 30 batches
    assert len(set(stream)) == len(PIDS)  # every image reached
    _pk_checks(cls, extra, world=2, mini=4)
    again = _take(cls(PIDS, *extra, 8, 2, seed=1, rank=0, world_size=1, start=16), 16)
    assert again == stream[16:32]  # resume by skipping the consumed indices


def test_balanced_sampler_prefers_distinct_cameras():
    pids, cams = [0] * 6 + [1] * 6, [0, 0, 0, 1, 1, 1] * 2
    batch = _take(BalancedIdentitySampler(pids, cams, 4, 2, seed=0, rank=0, world_size=1), 40)
    for i in range(0, 40, 2):
        assert cams[batch[i]] != cams[batch[i + 1]]


def test_too_few_identities_is_a_clear_error():
    with pytest.raises(ValueError, match=r"10 identities .* needs 16 .*SOLVER.IMS_PER_BATCH"):
        NaiveIdentitySampler(PIDS, 32, 2, seed=0, rank=0, world_size=1)
    with pytest.raises(ValueError, match="multiple of DATALOADER.NUM_INSTANCE"):
        NaiveIdentitySampler(PIDS, 9, 2, seed=0, rank=0, world_size=1)


def test_set_reweight_follows_weights():
    set_ids = [0 if p < 5 else 1 for p in PIDS]
    s = SetReWeightSampler(PIDS, set_ids, 4, 2, set_weight=[0.8, 0.2], seed=0, rank=0, world_size=1)
    stream = _take(s, 4 * 500)
    share = np.mean([set_ids[i] == 0 for i in stream])
    assert 0.72 < share < 0.88
    _pk_checks(lambda p, m, k, **kw: SetReWeightSampler(p, set_ids, m, k, **kw), world=2, mini=4)


def test_imbalanced_sampler_is_uniform_over_identities():
    stream = _take(ImbalancedDatasetSampler(PIDS, seed=0, rank=0, world_size=1), 6000)
    freq = np.bincount([PIDS[i] for i in stream], minlength=10) / 6000
    assert np.allclose(freq, 0.1, atol=0.02)


def test_sampler_selection_from_config_keys():
    assert sampler_name("", True, True) == "NaiveIdentitySampler"
    assert sampler_name("", True, False) == "BalancedIdentitySampler"
    assert sampler_name("", False, True) == "TrainingSampler"
    assert sampler_name("ImbalancedDatasetSampler", True, True) == "ImbalancedDatasetSampler"
    assert "SetReWeightSampler" in SAMPLER_REGISTRY
