import argparse
import ctypes
import importlib
import json
import os
import signal
import sys
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
from torch import nn

from fastreid.engine import default_argument_parser
from fastreid.engine.launch import DEFAULT_TIMEOUT, RENDEZVOUS_TIMEOUT, _die_with_parent, launch, launch_from_args
from fastreid.utils import comm


def _toy_train(x_all, y_all, steps, rank, world):
    """A few SGD steps of a linear model; each rank takes its slice of the global batch."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    per_rank = x_all.shape[1] // world
    for s in range(steps):
        x = x_all[s, rank * per_rank:(rank + 1) * per_rank]
        y = y_all[s, rank * per_rank:(rank + 1) * per_rank]
        loss = ((model(x).squeeze(1) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    m = model.module if world > 1 else model
    return torch.cat([m.weight.flatten(), m.bias]).tolist()


def _batches():
    g = torch.Generator().manual_seed(42)
    return torch.randn(4, 8, 3, generator=g), torch.randn(4, 8, generator=g)


def _worker(out_dir):
    rank, world = comm.get_rank(), comm.get_world_size()
    gathered = comm.all_gather(rank)
    x, y = _batches()
    result = {
        "rank": rank,
        "world": world,
        "gathered": gathered,
        "local_rank": comm.get_local_rank(),
        "local_size": comm.get_local_size(),
        "backend": dist.get_backend(),
        "weights": _toy_train(x, y, 4, rank, world),
    }
    with open(f"{out_dir}/rank{rank}.json", "w") as f:
        json.dump(result, f)


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("launch")
    launch(_worker, 2, dist_url="auto", args=(str(out),))
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.mark.slow
def test_two_process_gloo_all_gather(two_process_results):
    for r, res in enumerate(two_process_results):
        assert res["rank"] == r and res["world"] == 2 and res["gathered"] == [0, 1]
        assert res["local_rank"] == r and res["local_size"] == 2
        assert res["backend"] == ("nccl" if torch.cuda.is_available() else "gloo")


@pytest.mark.slow
def test_ddp_two_processes_match_one_process_same_global_batch(two_process_results):
    x, y = _batches()
    single = _toy_train(x, y, 4, 0, 1)
    for res in two_process_results:
        assert res["weights"] == pytest.approx(single, abs=1e-6)
    assert single != pytest.approx(_toy_train(x, y, 3, 0, 1), abs=1e-6)  # the steps do change weights


def test_single_process_calls_directly_and_auto_url_needs_one_machine():
    seen = []
    launch(seen.append, 1, args=("ran",))
    assert seen == ["ran"] and not dist.is_initialized()
    with pytest.raises(ValueError, match="one machine"):
        launch(seen.append, 2, num_machines=2, machine_rank=0, dist_url="auto")
    with pytest.raises(ValueError, match="dist_url"):
        launch(seen.append, 2, dist_url=None)


def test_collective_timeout_is_well_under_torchs_30_minutes():
    assert DEFAULT_TIMEOUT <= timedelta(minutes=10) < timedelta(minutes=30)
    assert RENDEZVOUS_TIMEOUT >= DEFAULT_TIMEOUT


def test_launch_from_args_takes_the_dist_timeout(monkeypatch):
    calls = []
    # fastreid.engine re-exports the function launch, which hides the module of the same name.
    module = importlib.import_module("fastreid.engine.launch")
    monkeypatch.setattr(module, "launch", lambda *a, **k: calls.append(k["timeout"]))
    args = argparse.Namespace(num_gpus=2, num_machines=1, machine_rank=0, dist_url="auto")
    launch_from_args(print, args)
    launch_from_args(print, argparse.Namespace(**vars(args), dist_timeout=90))
    launch_from_args(print, default_argument_parser().parse_args(["--num-gpus", "2", "--dist-timeout", "45"]))
    assert calls == [DEFAULT_TIMEOUT, timedelta(seconds=90), timedelta(seconds=45)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux-only")
def test_a_spawned_rank_asks_to_die_with_its_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_PDEATHSIG, PR_GET_PDEATHSIG = 1, 2
    signum = ctypes.c_int()
    try:
        _die_with_parent(os.getppid())
        assert libc.prctl(PR_GET_PDEATHSIG, ctypes.byref(signum), 0, 0, 0) == 0
        assert signum.value == signal.SIGKILL  # torch's spawn asks for SIGINT, which background jobs ignore
    finally:
        libc.prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0)


def test_a_rank_whose_launcher_already_exited_stops():
    with pytest.raises(SystemExit, match="exited before this rank started"):
        _die_with_parent(os.getppid() + 1)
