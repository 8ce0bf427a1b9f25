"""A 2-process gloo run of tools/train_net.py equals a 1-process run with the same global batch."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from trainer_utils import DETERMINISTIC, assert_same_training, tiny_overrides  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _train(data_root: Path, output_dir: Path, num_procs: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "tools/train_net.py", "--num-gpus", str(num_procs)]
    cmd += tiny_overrides(str(data_root), str(output_dir)) + DETERMINISTIC
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_two_gloo_processes_equal_one_process(tmp_path):
    one = _train(tmp_path / "data", tmp_path / "one", 1)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _train(tmp_path / "data", tmp_path / "two", 2)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "World size: 2" in two.stdout + two.stderr
    assert_same_training(tmp_path / "one", tmp_path / "two")
