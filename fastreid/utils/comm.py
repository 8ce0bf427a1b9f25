"""Primitives for multi-process communication.

Every function works in a plain single process (``torch.distributed`` not
initialised), under the gloo backend on CPU and under NCCL on GPUs. Object
collectives always run on a gloo group so that arbitrary picklable data never
has to be staged on a GPU.
"""

import functools
import os
from typing import Any, Dict, List, Optional

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "all_gather",
    "all_gather_tensor",
    "create_local_process_group",
    "destroy_process_groups",
    "gather",
    "get_local_rank",
    "get_local_size",
    "get_rank",
    "get_world_size",
    "is_main_process",
    "reduce_dict",
    "shared_random_seed",
    "synchronize",
]

# Group of the processes running on this machine; set by launch code through
# create_local_process_group().
_LOCAL_PROCESS_GROUP: Optional[dist.ProcessGroup] = None


def _is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    """Returns the number of processes in the default group (1 if not distributed)."""
    if not _is_initialized():
        return 1
    return dist.get_world_size()


def get_rank() -> int:
    """Returns the global rank of this process (0 if not distributed)."""
    if not _is_initialized():
        return 0
    return dist.get_rank()


def create_local_process_group(num_workers_per_machine: int) -> None:
    """Creates the per-machine process group used by the ``get_local_*`` helpers.

    Must be called by every process right after ``init_process_group``, since
    ``new_group`` is a collective call over all ranks.

    Args:
        num_workers_per_machine: number of processes started on each machine.
            Ranks ``[k * n, (k + 1) * n)`` are assumed to live on machine ``k``.

    Raises:
        RuntimeError: if the group was already created or distributed is off.
        ValueError: if the world size is not a multiple of ``num_workers_per_machine``.
    """
    global _LOCAL_PROCESS_GROUP
    if _LOCAL_PROCESS_GROUP is not None:
        raise RuntimeError("The local process group has already been created.")
    if not _is_initialized():
        raise RuntimeError("torch.distributed must be initialised first.")
    world_size = get_world_size()
    if num_workers_per_machine < 1 or world_size % num_workers_per_machine != 0:
        raise ValueError(
            f"World size {world_size} is not a multiple of "
            f"num_workers_per_machine={num_workers_per_machine}."
        )
    machine_rank = get_rank() // num_workers_per_machine
    for machine in range(world_size // num_workers_per_machine):
        first = machine * num_workers_per_machine
        group = dist.new_group(list(range(first, first + num_workers_per_machine)))
        if machine == machine_rank:
            _LOCAL_PROCESS_GROUP = group


def destroy_process_groups() -> None:
    """Tears down every process group of this process; a no-op when not distributed.

    Drops this module's own references (the local group, the cached gloo group)
    before ``destroy_process_group``, so the groups are really shut down now, while
    the peers are still alive, instead of by the interpreter at exit, where
    gloo's worker threads can abort the process. Call it on every rank at the
    end of the work.
    """
    global _LOCAL_PROCESS_GROUP
    _LOCAL_PROCESS_GROUP = None
    _get_global_gloo_group.cache_clear()
    if _is_initialized():
        dist.destroy_process_group()


def get_local_rank() -> int:
    """Returns the rank of this process among the processes on its machine.

    Uses the group from :func:`create_local_process_group` when it exists and
    falls back to the ``LOCAL_RANK`` environment variable (set by torchrun),
    then to 0.
    """
    if _is_initialized() and _LOCAL_PROCESS_GROUP is not None:
        return dist.get_rank(group=_LOCAL_PROCESS_GROUP)
    return int(os.environ.get("LOCAL_RANK", 0))


def get_local_size() -> int:
    """Returns the number of processes on this machine.

    Uses the group from :func:`create_local_process_group` when it exists and
    falls back to ``LOCAL_WORLD_SIZE`` (set by torchrun), then to 1.
    """
    if _is_initialized() and _LOCAL_PROCESS_GROUP is not None:
        return dist.get_world_size(group=_LOCAL_PROCESS_GROUP)
    return int(os.environ.get("LOCAL_WORLD_SIZE", 1))


def is_main_process() -> bool:
    return get_rank() == 0


def synchronize() -> None:
    """Barrier across all processes; a no-op without distributed training.

    Like every collective here it raises, rather than waits on, when another rank's process has died (its
    connections close), and after the process group's timeout when a rank never arrives (set by
    :func:`fastreid.engine.launch`; 10 minutes by default).
    """
    if get_world_size() == 1:
        return
    if dist.get_backend() == dist.Backend.NCCL:
        # Tell NCCL which device this rank uses; otherwise it guesses and warns.
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


@functools.lru_cache(maxsize=None)
def _get_global_gloo_group() -> dist.ProcessGroup:
    """Returns a group with all ranks on the gloo backend (cached, created once).

    Creation is collective, so the first call must happen on every rank; the
    object collectives below guarantee that.
    """
    if dist.get_backend() == dist.Backend.NCCL:
        return dist.new_group(backend="gloo")
    return dist.group.WORLD


def all_gather(data: Any, group: Optional[dist.ProcessGroup] = None) -> List[Any]:
    """Gathers arbitrary picklable data (not necessarily tensors) from all ranks.

    Args:
        data: any picklable object.
        group: a torch process group. Defaults to a group containing all ranks
            on the gloo backend.

    Returns:
        list: the data of every rank of ``group``, ordered by rank.
    """
    if get_world_size() == 1:
        return [data]
    if group is None:
        group = _get_global_gloo_group()
    group_size = dist.get_world_size(group=group)
    if group_size == 1:
        return [data]
    output: List[Any] = [None] * group_size
    dist.all_gather_object(output, data, group=group)
    return output


def all_gather_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """The concatenation along dim 0 of ``tensor`` from every rank, in rank order, over the default process group
    (NCCL on GPUs, gloo on CPUs) without pickling: for per-iteration gathers. Every rank must pass the same shape.
    """
    world = get_world_size()
    if world == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def gather(data: Any, dst: int = 0, group: Optional[dist.ProcessGroup] = None) -> List[Any]:
    """Gathers arbitrary picklable data (not necessarily tensors) on one rank.

    Args:
        data: any picklable object.
        dst: global rank that receives the data.
        group: a torch process group. Defaults to a group containing all ranks
            on the gloo backend.

    Returns:
        list: on ``dst``, the data of every rank of ``group`` ordered by rank;
        an empty list on the other ranks.
    """
    if get_world_size() == 1:
        return [data]
    if group is None:
        group = _get_global_gloo_group()
    group_size = dist.get_world_size(group=group)
    if group_size == 1:
        return [data]
    if get_rank() == dst:
        output: List[Any] = [None] * group_size
        dist.gather_object(data, output, dst=dst, group=group)
        return output
    dist.gather_object(data, None, dst=dst, group=group)
    return []


def shared_random_seed() -> int:
    """Returns a random integer that is the same on all processes.

    Every process must call this function, otherwise it deadlocks.
    """
    seed = int(np.random.randint(2**31))
    return all_gather(seed)[0]


def reduce_dict(input_dict: Dict[str, torch.Tensor], average: bool = True) -> Dict[str, torch.Tensor]:
    """Reduces a dict of scalar tensors onto rank 0.

    The tensors may live on any device: CPU tensors are reduced over the gloo
    group, CUDA tensors over the default group (or moved to CPU when that
    group is gloo).

    Args:
        input_dict: name -> scalar tensor; all values on the same device.
        average: average the values over processes instead of summing them.

    Returns:
        dict: same keys as ``input_dict``. Only rank 0 holds the reduced
        values; the other ranks get unspecified values.
    """
    world_size = get_world_size()
    if world_size < 2:
        return input_dict
    with torch.no_grad():
        names = sorted(input_dict.keys())
        values = torch.stack([torch.as_tensor(input_dict[k]) for k in names])
        device = values.device
        if device.type == "cpu":
            group = _get_global_gloo_group()
        elif dist.get_backend() == dist.Backend.NCCL:
            group = None
        else:
            group, values = None, values.cpu()
        dist.reduce(values, dst=0, group=group)
        if average and get_rank() == 0:
            values = values / world_size
        return dict(zip(names, values.to(device)))
