"""Start (multi-process, multi-machine) training: one process per GPU, or per requested worker on CPU."""
import ctypes
import gc
import logging
import os
import signal
import socket
import sys
from datetime import timedelta
from typing import Any, Callable, Optional, Sequence

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from fastreid.utils import comm

__all__ = ["DEFAULT_TIMEOUT", "RENDEZVOUS_TIMEOUT", "launch", "launch_from_args"]

logger = logging.getLogger(__name__)

# Longest a rank waits inside one collective (gloo or NCCL) for the other ranks. The longest legitimate wait
# is evaluation: the other ranks wait at a barrier while rank 0 ranks the gathered features, a matter of
# minutes on a CPU for the largest public test set (MSMT17, 11,659 x 82,161 images; runs with re-ranking of
# such sets should raise it). Checkpoint writes by rank 0 take seconds. A rank that dies is noticed sooner,
# when its connections close; the timeout is what catches a rank that hangs or a machine that drops off the
# network. torch's own default is 10 minutes for NCCL and 30 for gloo.
DEFAULT_TIMEOUT = timedelta(minutes=10)
# Longest the processes of a job wait for each other to start (machines of a cluster may start minutes apart).
RENDEZVOUS_TIMEOUT = timedelta(minutes=30)

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _find_free_port() -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Port 0 lets the OS pick; it is released before use, so another process could take it (rare).
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def _backend(num_gpus_per_machine: int) -> str:
    return "nccl" if torch.cuda.is_available() and num_gpus_per_machine > 0 else "gloo"


def launch(
    main_func: Callable[..., Any],
    num_gpus_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: Optional[str] = None,
    args: Sequence[Any] = (),
    timeout: timedelta = DEFAULT_TIMEOUT,
    rendezvous_timeout: timedelta = RENDEZVOUS_TIMEOUT,
) -> None:
    """Runs ``main_func(*args)`` in every process of a (possibly single-process) job.

    With CUDA, ``num_gpus_per_machine`` processes per machine each use one GPU over NCCL; without CUDA the
    same number of CPU processes run over gloo (``--num-gpus`` counts processes). A world size of 1 calls
    ``main_func`` directly, without ``torch.distributed``. With one process per machine, that process is
    this one; with several, they are spawned children of this one.

    Failures (the bound on a dead rank):
        * A spawned process dies with this one: on Linux the kernel sends it SIGKILL when its parent exits,
          whatever the reason (even SIGKILL), so a killed command leaves no rank training on as an orphan.
        * A rank whose process dies (crash, out-of-memory kill, SIGKILL; on any machine) fails the others at
          their next collective operation, at once: its connections close. Its data-loader workers hold those
          connections until they notice their parent is gone, a few seconds (torch checks every 5 s).
        * A rank that hangs, or whose machine drops off the network, closes nothing: the ranks waiting for it
          in a collective fail after ``timeout`` (10 minutes by default, against torch's 30 for gloo).
        * So no rank waits in a collective more than ``timeout`` for a dead or hung peer (seconds for one
          whose process has exited); a rank busy outside collectives notices at its next one. The process
          that spawned the ranks of a machine then stops the others and exits with an error.
        * NCCL: ``TORCH_NCCL_ASYNC_ERROR_HANDLING`` is 3 (tear the process down when a collective fails or
          times out) unless the user set it, so a hung NCCL collective cannot outlast ``timeout`` either.

    Args:
        main_func: function run by every process; must be picklable (defined at module level) when several
            processes run on this machine.
        num_gpus_per_machine: processes per machine.
        num_machines: number of machines.
        machine_rank: rank of this machine.
        dist_url: init method, e.g. "tcp://127.0.0.1:50152"; "auto" picks a free local port (one machine only).
        args: positional arguments of ``main_func``.
        timeout: longest wait of a rank inside one collective operation (see ``DEFAULT_TIMEOUT``).
        rendezvous_timeout: longest wait for all processes of the job to start.

    Raises:
        ValueError: on "auto" with several machines, or a missing ``dist_url`` with several processes.
        torch.multiprocessing.ProcessException: a spawned process failed (its traceback is in the message).
    """
    world_size = num_machines * num_gpus_per_machine
    if world_size <= 1:
        main_func(*args)
        return
    if dist_url == "auto":
        if num_machines != 1:
            raise ValueError('dist_url="auto" only works on one machine; give every machine the same tcp:// address.')
        dist_url = f"tcp://127.0.0.1:{_find_free_port()}"
    if not dist_url:
        raise ValueError('A dist_url is required with several processes (e.g. "tcp://127.0.0.1:50152" or "auto").')
    if num_machines > 1 and dist_url.startswith("file://"):
        logger.warning("file:// init methods may behave unexpectedly across machines.")
    worker_args = (main_func, world_size, num_gpus_per_machine, machine_rank, dist_url, tuple(args), timeout,
                   rendezvous_timeout)
    if num_gpus_per_machine == 1:
        # A child would survive a SIGKILL of this command; running the rank here leaves nothing to orphan.
        _distributed_worker(0, *worker_args)
        return
    mp.start_processes(
        _spawned_worker,
        nprocs=num_gpus_per_machine,
        args=(os.getpid(),) + worker_args,
        daemon=False,
        start_method="spawn",
    )


def launch_from_args(main_func: Callable[[Any], Any], args) -> None:
    """:func:`launch` ``main_func(args)`` with the job shape of :func:`~fastreid.engine.default_argument_parser`'s
    ``--num-gpus``, ``--num-machines``, ``--machine-rank`` and ``--dist-url``, and the collective timeout of
    ``--dist-timeout`` (seconds) when the parser has it (default: ``DEFAULT_TIMEOUT``)."""
    seconds = getattr(args, "dist_timeout", None)
    timeout = DEFAULT_TIMEOUT if seconds is None else timedelta(seconds=float(seconds))
    launch(main_func, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,), timeout=timeout)


def _die_with_parent(parent_pid: int) -> None:
    """Make the kernel SIGKILL this process when its parent exits (Linux; elsewhere only the check below).

    torch's spawn asks for SIGINT instead, which does nothing to a process that ignores SIGINT, as every
    background job of a shell script (``cmd &``) and every ``nohup`` job does: a killed launcher used to leave
    its ranks training. The check afterwards covers a parent that died before the signal was set.

    Raises:
        SystemExit: the parent is already gone.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            failed = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0
        except (OSError, AttributeError):
            failed = True
        if failed:
            logger.warning("Could not set a parent-death signal: this rank may outlive its launcher if it is killed.")
    if os.getppid() != parent_pid:
        raise SystemExit(f"The launching process {parent_pid} exited before this rank started; stopping.")


def _spawned_worker(local_rank: int, parent_pid: int, *worker_args: Any) -> None:
    _die_with_parent(parent_pid)
    _distributed_worker(local_rank, *worker_args)


def _distributed_worker(
    local_rank: int,
    main_func: Callable[..., Any],
    world_size: int,
    num_gpus_per_machine: int,
    machine_rank: int,
    dist_url: str,
    args: Sequence[Any],
    timeout: timedelta,
    rendezvous_timeout: timedelta,
) -> None:
    backend = _backend(num_gpus_per_machine)
    if backend == "nccl":
        if num_gpus_per_machine > torch.cuda.device_count():
            raise RuntimeError(
                f"{num_gpus_per_machine} processes per machine were asked but only {torch.cuda.device_count()} "
                "GPUs exist."
            )
        # Tear the process down when a collective fails or outlasts the timeout, rather than hang.
        os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "3")
    global_rank = machine_rank * num_gpus_per_machine + local_rank
    try:
        # The rendezvous waits up to rendezvous_timeout for every process; collectives then use timeout.
        store, _, _ = next(dist.rendezvous(dist_url, global_rank, world_size, timeout=rendezvous_timeout))
        dist.init_process_group(backend=backend, store=store, world_size=world_size, rank=global_rank, timeout=timeout)
    except Exception:
        logger.error("Process group URL: %s", dist_url)
        raise
    try:
        comm.create_local_process_group(num_gpus_per_machine)
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        # All ranks are up before any work starts; from now on waiting in the store is a collective wait too.
        comm.synchronize()
        store.set_timeout(timeout)
        main_func(*args)
    except Exception:
        logger.error(
            "Rank %d of %d failed. If the error is a closed connection or a timeout, another rank probably failed "
            "or was killed first: its log or exit status shows why.", global_rank, world_size,
        )
        raise
    finally:
        # Objects caught in reference cycles (a trainer holding its DDP model) still hold
        # process groups; free them now, while the interpreter can still run gloo's
        # clean-up, rather than during interpreter shutdown.
        gc.collect()
        comm.destroy_process_groups()
