import json

import pytest
import torch
import torch.distributed as dist
from torch import nn

from fastreid.engine.launch import launch
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
