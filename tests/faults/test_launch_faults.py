"""Fault injection for launch: killed launchers, dead and hung ranks, late machines, exit after the work.

Every job runs in its own processes: a tiny gloo job on CPU written into ``tmp_path`` (its ranks all-reduce a
scalar in a loop, or return at once), started once per "machine" on 127.0.0.1.
"""
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Processes are watched through /proc, and the parent-death signal is Linux's.
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux process tests")

JOB = textwrap.dedent('''
    import os, sys, time
    from datetime import timedelta

    import torch
    import torch.distributed as dist
    from torch.utils.data import DataLoader

    from fastreid.engine.launch import launch


    def work(out_dir, mode):
        rank = dist.get_rank()
        with open(os.path.join(out_dir, f"rank{rank}.pid.tmp"), "w") as f:
            f.write(str(os.getpid()))
        os.replace(os.path.join(out_dir, f"rank{rank}.pid.tmp"), os.path.join(out_dir, f"rank{rank}.pid"))
        t = torch.zeros(1)
        if mode == "loop":
            while True:
                dist.all_reduce(t)
                time.sleep(0.05)
        # "return": some DDP work with loader workers, then return and note when.
        model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 1))
        for x in DataLoader(torch.randn(64, 4), batch_size=8, num_workers=2):
            model(x).sum().backward()
        with open(os.path.join(out_dir, f"rank{rank}.returned"), "w") as f:
            f.write(repr(time.time()))


    if __name__ == "__main__":
        mode, out_dir, nprocs, machines, machine_rank, url, timeout = sys.argv[1:]
        launch(work, int(nprocs), num_machines=int(machines), machine_rank=int(machine_rank), dist_url=url,
               args=(out_dir, mode), timeout=timedelta(seconds=float(timeout)))
''')


def _ignore_sigint() -> None:
    # What `cmd &` in a shell script and nohup do to the command.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start(tmp_path: Path, mode: str, nprocs: int, machines: int, machine_rank: int, url: str,
           timeout: float = 60.0) -> subprocess.Popen:
    script = tmp_path / "job.py"
    script.write_text(JOB)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, str(script), mode, str(tmp_path), str(nprocs), str(machines), str(machine_rank), url,
           str(timeout)]
    with open(tmp_path / f"machine{machine_rank}.log", "w") as log:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=_ignore_sigint)


def _url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait_for_pids(tmp_path: Path, ranks, procs, budget: float = 120.0):
    deadline = time.monotonic() + budget
    files = [tmp_path / f"rank{r}.pid" for r in ranks]
    while not all(f.exists() for f in files):
        for p in procs:
            assert p.poll() is None, _logs(tmp_path)
        assert time.monotonic() < deadline, "the ranks did not start\n" + _logs(tmp_path)
        time.sleep(0.2)
    return [int(f.read_text()) for f in files]


def _logs(tmp_path: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(tmp_path.glob("machine*.log")))


def _wait_gone(pids, budget: float) -> float:
    start = time.monotonic()
    while any(_alive(p) for p in pids) and time.monotonic() - start < budget:
        time.sleep(0.1)
    return time.monotonic() - start


def _assert_fails_within(proc: subprocess.Popen, budget: float, tmp_path: Path) -> None:
    """``proc`` exits with an error within ``budget`` seconds from now."""
    start = time.monotonic()
    try:
        code = proc.wait(timeout=budget + 30)
    except subprocess.TimeoutExpired:
        code = None
    elapsed = time.monotonic() - start
    assert code not in (0, None) and elapsed < budget, (code, elapsed, _logs(tmp_path))


def _kill_all(procs, pids) -> None:
    """Clean up whatever a failing test left running (only processes this test started)."""
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


@pytest.mark.slow
def test_killing_the_launcher_kills_its_ranks(tmp_path):
    """SIGKILL of a command running two ranks: both die with it, even with SIGINT ignored (a background job)."""
    launcher = _start(tmp_path, "loop", 2, 1, 0, "auto")
    pids = []
    try:
        pids = _wait_for_pids(tmp_path, [0, 1], [launcher])
        launcher.kill()
        launcher.wait()
        assert _wait_gone(pids, 10) < 10, f"ranks {[p for p in pids if _alive(p)]} outlived their launcher"
    finally:
        _kill_all([launcher], pids)


@pytest.mark.slow
def test_one_process_per_machine_runs_in_the_command_itself(tmp_path):
    """Two machines of one process each: each rank is the command's own process (nothing to orphan)."""
    url = _url()
    machines = [_start(tmp_path, "return", 1, 2, r, url) for r in range(2)]
    try:
        for m in machines:
            assert m.wait(timeout=180) == 0, _logs(tmp_path)
        assert [int((tmp_path / f"rank{r}.pid").read_text()) for r in range(2)] == [m.pid for m in machines]
    finally:
        _kill_all(machines, [])


@pytest.mark.slow
def test_a_killed_local_rank_stops_the_job(tmp_path):
    """SIGKILL of one of two local ranks: the command fails within seconds and takes the other rank down."""
    launcher = _start(tmp_path, "loop", 2, 1, 0, "auto", timeout=60)
    pids = []
    try:
        pids = _wait_for_pids(tmp_path, [0, 1], [launcher])
        os.kill(pids[1], signal.SIGKILL)
        _assert_fails_within(launcher, 15, tmp_path)
        assert "terminated with signal SIGKILL" in _logs(tmp_path)
        assert _wait_gone(pids, 5) < 5
    finally:
        _kill_all([launcher], pids)


@pytest.mark.slow
@pytest.mark.parametrize("fault, timeout, budget, message", [
    # SIGKILL of machine 1's command: its connections close, machine 0 fails at once, well before the timeout.
    ("kill", 60, 15, "by peer"),  # gloo: "Connection closed by peer" or "Connection reset by peer"
    # SIGSTOP of machine 1's rank: nothing closes, machine 0 fails after the 5 s timeout (not torch's 30 min).
    ("stop", 5, 5 + 15, "Rank 0 of 2 failed"),
])
def test_a_dead_or_hung_rank_fails_the_other_machine_within_the_bound(tmp_path, fault, timeout, budget, message):
    url = _url()
    machines = [_start(tmp_path, "loop", 1, 2, r, url, timeout=timeout) for r in range(2)]
    pids = []
    try:
        pids = _wait_for_pids(tmp_path, [0, 1], machines)
        time.sleep(1)
        if fault == "kill":
            machines[1].kill()
        else:
            os.kill(pids[1], signal.SIGSTOP)
        _assert_fails_within(machines[0], budget, tmp_path)
        assert message in _logs(tmp_path)
        if fault == "kill":
            assert _wait_gone([pids[1]], 5) < 5, "machine 1's rank outlived its command"
    finally:
        if fault == "stop" and pids and _alive(pids[1]):
            os.kill(pids[1], signal.SIGCONT)
        _kill_all(machines, pids)


@pytest.mark.slow
def test_a_machine_starting_later_than_the_collective_timeout_still_joins(tmp_path):
    """Waiting for the other machines at start-up is not bounded by the (short) collective timeout."""
    url = _url()
    first = _start(tmp_path, "return", 1, 2, 0, url, timeout=3)
    machines = [first]
    try:
        time.sleep(8)
        assert first.poll() is None, "machine 0 gave up waiting for machine 1\n" + _logs(tmp_path)
        machines.append(_start(tmp_path, "return", 1, 2, 1, url, timeout=3))
        for m in machines:
            assert m.wait(timeout=180) == 0, _logs(tmp_path)
    finally:
        _kill_all(machines, [])


@pytest.mark.slow
def test_the_launcher_exits_within_seconds_of_the_work(tmp_path):
    """Two local ranks with DDP and loader workers: the command ends a few seconds after both returned."""
    launcher = _start(tmp_path, "return", 2, 1, 0, "auto")
    try:
        assert launcher.wait(timeout=180) == 0, _logs(tmp_path)
        ended = time.time()
        returned = max(float((tmp_path / f"rank{r}.returned").read_text()) for r in range(2))
        assert ended - returned < 5, f"the launcher exited {ended - returned:.1f} s after the work ended"
    finally:
        _kill_all([launcher], [])
