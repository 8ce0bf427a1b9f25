"""Tests for fastreid.utils.comm, in one process and in a real 2-process gloo group."""

import json
import os
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from fastreid.utils import comm


def test_single_process_defaults(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert not dist.is_initialized()
    assert comm.get_world_size() == 1
    assert comm.get_rank() == 0
    assert comm.get_local_rank() == 0
    assert comm.get_local_size() == 1
    assert comm.is_main_process()
    comm.synchronize()


def test_local_rank_env_fallback(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "3")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert comm.get_local_rank() == 3
    assert comm.get_local_size() == 4


def test_single_process_collectives():
    data = {"a": [1, 2], "b": "x"}
    assert comm.all_gather(data) == [data]
    assert comm.gather(data) == [data]
    seed = comm.shared_random_seed()
    assert isinstance(seed, int) and 0 <= seed < 2**31
    losses = {"loss_a": torch.tensor(1.5), "loss_b": torch.tensor(2.0)}
    assert comm.reduce_dict(losses) is losses


def _worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=30),
    )
    try:
        comm.create_local_process_group(world_size)
        gathered = comm.all_gather({"rank": rank, "items": list(range(rank + 1))})
        on_dst = comm.gather(f"from-{rank}", dst=0)
        seed = comm.shared_random_seed()
        tensors = {"loss_b": torch.tensor(float(rank + 1)), "loss_a": torch.tensor(10.0 * (rank + 1))}
        averaged = comm.reduce_dict(tensors, average=True)
        summed = comm.reduce_dict(tensors, average=False)
        comm.synchronize()
        result = {
            "world_size": comm.get_world_size(),
            "rank": comm.get_rank(),
            "local_rank": comm.get_local_rank(),
            "local_size": comm.get_local_size(),
            "gathered": gathered,
            "on_dst": on_dst,
            "seed": seed,
            "averaged": {k: v.item() for k, v in averaged.items()},
            "summed": {k: v.item() for k, v in summed.items()},
        }
    finally:
        comm.destroy_process_groups()
    # The module lets go of its groups, so nothing is left for the interpreter to tear down at exit.
    result["after_destroy"] = {
        "initialized": dist.is_initialized(),
        "local_group": comm._LOCAL_PROCESS_GROUP is not None,
        "cached_gloo_groups": comm._get_global_gloo_group.cache_info().currsize,
    }
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("comm")
    world_size = 2
    mp.spawn(_worker, args=(world_size, str(tmp / "init"), str(tmp)), nprocs=world_size, join=True)
    results = []
    for rank in range(world_size):
        with open(tmp / f"rank{rank}.json") as f:
            results.append(json.load(f))
    return results


@pytest.mark.slow
def test_two_process_ranks(two_process_results):
    for rank, res in enumerate(two_process_results):
        assert res["world_size"] == 2
        assert res["rank"] == rank
        assert res["local_rank"] == rank
        assert res["local_size"] == 2


@pytest.mark.slow
def test_two_process_all_gather_and_gather(two_process_results):
    expected = [{"rank": 0, "items": [0]}, {"rank": 1, "items": [0, 1]}]
    r0, r1 = two_process_results
    assert r0["gathered"] == expected
    assert r1["gathered"] == expected
    assert r0["on_dst"] == ["from-0", "from-1"]
    assert r1["on_dst"] == []


@pytest.mark.slow
def test_two_process_shared_seed_and_reduce(two_process_results):
    r0, r1 = two_process_results
    assert r0["seed"] == r1["seed"]
    assert r0["averaged"] == pytest.approx({"loss_a": 15.0, "loss_b": 1.5})
    assert r0["summed"] == pytest.approx({"loss_a": 30.0, "loss_b": 3.0})


@pytest.mark.slow
def test_two_process_teardown_releases_every_group(two_process_results):
    for res in two_process_results:
        assert res["after_destroy"] == {"initialized": False, "local_group": False, "cached_gloo_groups": 0}


def test_destroy_without_distributed_is_a_no_op():
    comm.destroy_process_groups()
    assert not dist.is_initialized() and comm.get_world_size() == 1
