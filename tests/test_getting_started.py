"""Every command block of GETTING_STARTED.md marked ``<!-- runnable -->`` runs, in order, on the synthetic data.

The blocks run in a scratch folder that links the repository's ``tools`` and ``configs``, so their relative
outputs (``logs/``, ``datasets/``) stay out of the checkout.
"""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"<!-- runnable -->\s*```bash\n(.*?)```", re.S)


def runnable_commands():
    text = (REPO / "GETTING_STARTED.md").read_text()
    return [line for block in BLOCK.findall(text) for line in block.strip().splitlines() if line.strip()]


def test_the_guide_has_runnable_blocks():
    commands = runnable_commands()
    assert len(commands) >= 6
    assert all(c.startswith("python tools/") for c in commands), commands


@pytest.mark.slow
def test_runnable_commands_of_getting_started_run(tmp_path):
    for name in ("tools", "configs"):
        (tmp_path / name).symlink_to(REPO / name)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("FASTREID_DATASETS", None)
    for command in runnable_commands():
        args = shlex.split(command)
        args[0] = sys.executable
        done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
    assert (tmp_path / "logs" / "smoke" / "model_final.pth").is_file()
    assert (tmp_path / "logs" / "smoke-search" / "results.html").is_file()
    assert list((tmp_path / "logs" / "smoke-vis" / "rank_lists").rglob("*.png"))
