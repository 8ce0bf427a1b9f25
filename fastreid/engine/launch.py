"""Start (multi-process, multi-machine) training: one process per GPU, or per requested worker on CPU.

Jobs started by torchrun (``python -m torch.distributed.run``), which sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``, join torchrun's job through the
``env://`` rendezvous instead of spawning processes of their own.
"""
import ctypes
import gc
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, List, Mapping, Optional, Sequence

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from fastreid.utils import comm

__all__ = ["DEFAULT_TIMEOUT", "RENDEZVOUS_TIMEOUT", "EnvJob", "job_from_env", "launch", "launch_from_args"]

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


@dataclass(frozen=True)
class EnvJob:
    """The job shape an ``env://`` launcher (torchrun) gave this process through its environment."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int

    @property
    def num_machines(self) -> int:
        return self.world_size // self.local_world_size

    @property
    def machine_rank(self) -> int:
        return self.rank // self.local_world_size


_ENV_JOB_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def job_from_env(environ: Mapping[str, str] = os.environ) -> Optional[EnvJob]:
    """The job torchrun started this process in, or None when ``WORLD_SIZE`` is not set (no env launcher).

    A ``WORLD_SIZE`` of 1 needs nothing else. A larger one needs every variable torchrun sets (``RANK``,
    ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``), with the ranks of a machine
    consecutive (rank = machine rank * LOCAL_WORLD_SIZE + LOCAL_RANK), as torchrun numbers them.

    Args:
        environ: the environment to read (default: this process's).

    Raises:
        ValueError: a variable is missing, not an integer, or inconsistent with the others.
    """
    if "WORLD_SIZE" not in environ:
        if "RANK" in environ or "TORCHELASTIC_RUN_ID" in environ:
            raise ValueError("RANK or TORCHELASTIC_RUN_ID is set but WORLD_SIZE is not: start the job with torchrun, "
                             "or unset them to let fastreid start its own processes (--num-gpus).")
        return None
    values = {}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        text = environ.get(name)
        try:
            values[name] = None if text is None else int(text)
        except ValueError:
            raise ValueError(f"Environment variable {name}={text!r} is not an integer.") from None
    world_size = values["WORLD_SIZE"]
    if world_size < 1:
        raise ValueError(f"WORLD_SIZE={world_size} must be at least 1.")
    if world_size == 1:
        return EnvJob(rank=0, world_size=1, local_rank=0, local_world_size=1)
    missing = [name for name in _ENV_JOB_VARS if not environ.get(name)]
    if missing:
        raise ValueError(f"WORLD_SIZE={world_size} is set but {', '.join(missing)} "
                         f"{'is' if len(missing) == 1 else 'are'} not: start the job with torchrun, which sets "
                         f"{', '.join(_ENV_JOB_VARS)}.")
    job = EnvJob(rank=values["RANK"], world_size=world_size, local_rank=values["LOCAL_RANK"],
                 local_world_size=values["LOCAL_WORLD_SIZE"])
    if not (0 <= job.rank < world_size and 0 <= job.local_rank < job.local_world_size):
        raise ValueError(f"RANK={job.rank} must be in [0, WORLD_SIZE={world_size}) and LOCAL_RANK={job.local_rank} "
                         f"in [0, LOCAL_WORLD_SIZE={job.local_world_size}).")
    if world_size % job.local_world_size or job.rank % job.local_world_size != job.local_rank:
        raise ValueError(
            f"RANK={job.rank}, LOCAL_RANK={job.local_rank}, LOCAL_WORLD_SIZE={job.local_world_size}, "
            f"WORLD_SIZE={world_size}: fastreid needs the same number of processes on every machine, numbered "
            "consecutively per machine (torchrun with the same --nproc-per-node on every node does this)."
        )
    return job


def _flags_overridden_by(
    job: EnvJob, num_gpus_per_machine: int, num_machines: int, machine_rank: int, dist_url: Optional[str]
) -> List[str]:
    """The job-shape arguments, when given (not at their defaults), that disagree with ``job``."""
    if (num_gpus_per_machine, num_machines, machine_rank) == (1, 1, 0) and dist_url in (None, "auto", "env://"):
        return []  # the command line's defaults: nothing was asked
    ignored = []
    for flag, given, env in (("--num-gpus", num_gpus_per_machine, job.local_world_size),
                             ("--num-machines", num_machines, job.num_machines),
                             ("--machine-rank", machine_rank, job.machine_rank)):
        if given != env:
            ignored.append(f"{flag} {given} (the environment says {env})")
    if dist_url not in (None, "auto", "env://"):
        ignored.append(f"--dist-url {dist_url} (the environment's MASTER_ADDR:MASTER_PORT is used)")
    return ignored


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

    Under torchrun (``WORLD_SIZE`` set; see :func:`job_from_env`) the environment gives the job shape and
    the arguments below that describe it are ignored, with a warning naming any that disagree: the processes
    already exist, so this one joins the job through ``env://`` (same backends and timeouts) instead of
    spawning, or calls ``main_func`` directly when ``WORLD_SIZE`` is 1.

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
        ValueError: on "auto" with several machines, or a missing ``dist_url`` with several processes; under
            torchrun, on an incomplete or inconsistent environment.
        torch.multiprocessing.ProcessException: a spawned process failed (its traceback is in the message).
    """
    job = job_from_env()
    if job is not None:
        _launch_in_env_job(job, main_func, args, timeout, rendezvous_timeout,
                           _flags_overridden_by(job, num_gpus_per_machine, num_machines, machine_rank, dist_url))
        return
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


def _launch_in_env_job(
    job: EnvJob,
    main_func: Callable[..., Any],
    args: Sequence[Any],
    timeout: timedelta,
    rendezvous_timeout: timedelta,
    ignored_flags: Sequence[str],
) -> None:
    if ignored_flags and job.local_rank == 0:
        # Logged before any handler is set up, so it reaches stderr through logging's last-resort handler.
        logger.warning("Started by torchrun (WORLD_SIZE=%d, LOCAL_WORLD_SIZE=%d): the environment sets the job "
                       "shape and wins over %s.", job.world_size, job.local_world_size, "; ".join(ignored_flags))
    if job.world_size == 1:
        main_func(*args)
        return
    _run_in_process_group(main_func, args, rank=job.rank, world_size=job.world_size, local_rank=job.local_rank,
                          local_world_size=job.local_world_size, dist_url="env://", timeout=timeout,
                          rendezvous_timeout=rendezvous_timeout)


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
    _run_in_process_group(main_func, args, rank=machine_rank * num_gpus_per_machine + local_rank,
                          world_size=world_size, local_rank=local_rank, local_world_size=num_gpus_per_machine,
                          dist_url=dist_url, timeout=timeout, rendezvous_timeout=rendezvous_timeout)


def _run_in_process_group(
    main_func: Callable[..., Any],
    args: Sequence[Any],
    *,
    rank: int,
    world_size: int,
    local_rank: int,
    local_world_size: int,
    dist_url: str,
    timeout: timedelta,
    rendezvous_timeout: timedelta,
) -> None:
    """Join the process group at ``dist_url`` as ``rank``, run ``main_func(*args)``, then tear the groups down."""
    backend = _backend(local_world_size)
    if backend == "nccl":
        if local_world_size > torch.cuda.device_count():
            raise RuntimeError(
                f"{local_world_size} processes per machine were asked but only {torch.cuda.device_count()} "
                "GPUs exist."
            )
        # Tear the process down when a collective fails or outlasts the timeout, rather than hang.
        os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "3")
    try:
        # The rendezvous waits up to rendezvous_timeout for every process; collectives then use timeout.
        store, _, _ = next(dist.rendezvous(dist_url, rank, world_size, timeout=rendezvous_timeout))
        dist.init_process_group(backend=backend, store=store, world_size=world_size, rank=rank, timeout=timeout)
    except Exception:
        logger.error("Process group URL: %s", dist_url)
        raise
    try:
        comm.create_local_process_group(local_world_size)
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        # All ranks are up before any work starts; from now on waiting in the store is a collective wait too.
        comm.synchronize()
        store.set_timeout(timeout)
        main_func(*args)
    except Exception:
        logger.error(
            "Rank %d of %d failed. If the error is a closed connection or a timeout, another rank probably failed "
            "or was killed first: its log or exit status shows why.", rank, world_size,
        )
        raise
    finally:
        # Objects caught in reference cycles (a trainer holding its DDP model) still hold
        # process groups; free them now, while the interpreter can still run gloo's
        # clean-up, rather than during interpreter shutdown.
        gc.collect()
        comm.destroy_process_groups()
