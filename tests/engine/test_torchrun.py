"""Jobs started by torchrun join its env:// process group instead of spawning their own processes."""
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
from trainer_utils import DETERMINISTIC, assert_same_training, tiny_overrides  # noqa: E402

from fastreid.engine.launch import EnvJob, _find_free_port, job_from_env, launch  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
# fastreid.engine re-exports the function launch, which hides the module of the same name.
launch_module = importlib.import_module("fastreid.engine.launch")


def _torchrun_env(**values: str) -> dict:
    env = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": "29500", "TORCHELASTIC_RUN_ID": "none"}
    env.update(values)
    return {k: v for k, v in env.items() if v is not None}


def test_job_shape_is_read_from_torchruns_environment():
    assert job_from_env({}) is None
    job = job_from_env(_torchrun_env())
    assert job == EnvJob(rank=3, world_size=4, local_rank=1, local_world_size=2)
    assert (job.num_machines, job.machine_rank) == (2, 1)
    assert job_from_env({"WORLD_SIZE": "1"}) == EnvJob(0, 1, 0, 1)


@pytest.mark.parametrize("values, match", [
    ({"MASTER_PORT": None}, "MASTER_PORT is not"),
    ({"LOCAL_RANK": None, "LOCAL_WORLD_SIZE": None}, "LOCAL_RANK, LOCAL_WORLD_SIZE are not"),
    ({"RANK": "two"}, "RANK='two' is not an integer"),
    ({"RANK": "4"}, r"RANK=4 must be in \[0, WORLD_SIZE=4\)"),
    ({"WORLD_SIZE": "3", "RANK": "1"}, "same number of processes on every machine"),
    ({"LOCAL_RANK": "0"}, "numbered consecutively"),
    ({"WORLD_SIZE": None}, "WORLD_SIZE is not"),
])
def test_an_incomplete_or_inconsistent_environment_is_a_clear_error(values, match):
    with pytest.raises(ValueError, match=match):
        job_from_env(_torchrun_env(**values))


def test_under_torchrun_launch_joins_env_group_instead_of_spawning(monkeypatch):
    for name, value in _torchrun_env(RANK="2", LOCAL_RANK="0").items():
        monkeypatch.setenv(name, value)
    joined, warnings = [], []
    monkeypatch.setattr(launch_module, "_run_in_process_group", lambda main, args, **kw: joined.append(kw))
    monkeypatch.setattr(launch_module.mp, "start_processes", lambda *a, **k: pytest.fail("spawned"))
    # Checked on the logger itself: a "fastreid" logger set up by another test stops propagation to caplog.
    monkeypatch.setattr(launch_module.logger, "warning", lambda msg, *a: warnings.append(msg % a))
    launch(print, 1, dist_url="auto")
    assert not warnings  # the command line's defaults ask for nothing
    launch(print, 8, num_machines=2, machine_rank=1, dist_url="tcp://10.0.0.1:1234")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("RANK", "3")
    launch(print, 8, num_machines=2, machine_rank=1, dist_url="tcp://10.0.0.1:1234")
    assert [(kw["rank"], kw["local_rank"]) for kw in joined] == [(2, 0), (2, 0), (3, 1)]
    assert {(kw["world_size"], kw["local_world_size"], kw["dist_url"]) for kw in joined} == {(4, 2, "env://")}
    assert len(warnings) == 1  # once per machine, from local rank 0
    message = warnings[0]
    assert "environment sets the job shape and wins" in message
    assert "--num-gpus 8 (the environment says 2)" in message and "--dist-url tcp://10.0.0.1:1234" in message
    assert "--num-machines" not in message and "--machine-rank" not in message  # those agree


def test_world_size_one_under_torchrun_runs_in_this_process(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    seen = []
    launch(seen.append, 4, dist_url="auto", args=("ran",))
    assert seen == ["ran"] and not dist.is_initialized()


def _torchrun_node(node_rank: int, port: int, data_root: Path, output_dir: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
           "--node-rank", str(node_rank), "--master-addr", "127.0.0.1", "--master-port", str(port),
           "tools/train_net.py"]
    cmd += tiny_overrides(str(data_root), str(output_dir)) + DETERMINISTIC
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_two_torchrun_nodes_on_loopback_equal_one_process(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    one = subprocess.run([sys.executable, "tools/train_net.py"] + tiny_overrides(str(tmp_path / "data"),
                         str(tmp_path / "one")) + DETERMINISTIC, cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]

    # Each node gets its own OUTPUT_DIR, so that anything rank 1 writes shows up apart from rank 0's files.
    port = _find_free_port()
    nodes = [_torchrun_node(r, port, tmp_path / "data", tmp_path / f"node{r}") for r in range(2)]
    try:
        outputs = [node.communicate(timeout=300)[0] for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    for node, output in zip(nodes, outputs):
        assert node.returncode == 0, output[-3000:]
    assert "Rank of current process: 0. World size: 2" in outputs[0]
    assert "Rank of current process: 1. World size: 2" in (tmp_path / "node1" / "log.txt.rank1").read_text()
    assert_same_training(tmp_path / "one", tmp_path / "node0")
    assert not list((tmp_path / "node1").glob("*.pth")) and not (tmp_path / "node1" / "metrics.json").exists()
