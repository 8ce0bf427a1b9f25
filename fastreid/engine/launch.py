"""Start (multi-process, multi-machine) training: one process per GPU, or per requested worker on CPU."""
import gc
import logging
import socket
from datetime import timedelta
from typing import Any, Callable, Optional, Sequence

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from fastreid.utils import comm

__all__ = ["DEFAULT_TIMEOUT", "launch"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = timedelta(minutes=30)


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
) -> None:
    """Runs ``main_func(*args)`` in every process of a (possibly single-process) job.

    With CUDA, ``num_gpus_per_machine`` processes per machine each use one GPU over NCCL; without CUDA the
    same number of CPU processes run over gloo (``--num-gpus`` counts processes). A world size of 1 calls
    ``main_func`` directly, without ``torch.distributed``.

    Args:
        main_func: function run by every process; must be picklable (defined at module level).
        num_gpus_per_machine: processes per machine.
        num_machines: number of machines.
        machine_rank: rank of this machine.
        dist_url: init method, e.g. "tcp://127.0.0.1:50152"; "auto" picks a free local port (one machine only).
        args: positional arguments of ``main_func``.
        timeout: timeout of collective operations.

    Raises:
        ValueError: on "auto" with several machines, or a missing ``dist_url`` with several processes.
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
    mp.start_processes(
        _distributed_worker,
        nprocs=num_gpus_per_machine,
        args=(main_func, world_size, num_gpus_per_machine, machine_rank, dist_url, tuple(args), timeout),
        daemon=False,
        start_method="spawn",
    )


def launch_from_args(main_func: Callable[[Any], Any], args) -> None:
    """:func:`launch` ``main_func(args)`` with the job shape of :func:`~fastreid.engine.default_argument_parser`'s
    ``--num-gpus``, ``--num-machines``, ``--machine-rank`` and ``--dist-url``."""
    launch(main_func, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,))


def _distributed_worker(
    local_rank: int,
    main_func: Callable[..., Any],
    world_size: int,
    num_gpus_per_machine: int,
    machine_rank: int,
    dist_url: str,
    args: Sequence[Any],
    timeout: timedelta,
) -> None:
    backend = _backend(num_gpus_per_machine)
    if backend == "nccl" and num_gpus_per_machine > torch.cuda.device_count():
        raise RuntimeError(
            f"{num_gpus_per_machine} processes per machine were asked but only {torch.cuda.device_count()} GPUs exist."
        )
    global_rank = machine_rank * num_gpus_per_machine + local_rank
    try:
        dist.init_process_group(
            backend=backend, init_method=dist_url, world_size=world_size, rank=global_rank, timeout=timeout
        )
    except Exception:
        logger.error("Process group URL: %s", dist_url)
        raise
    try:
        comm.create_local_process_group(num_gpus_per_machine)
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        # All ranks are up before any work starts.
        comm.synchronize()
        main_func(*args)
    finally:
        # Objects caught in reference cycles (a trainer holding its DDP model) still hold
        # process groups; free them now, while the interpreter can still run gloo's
        # clean-up, rather than during interpreter shutdown.
        gc.collect()
        comm.destroy_process_groups()
