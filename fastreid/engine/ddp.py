"""Wrapping a model for distributed data-parallel training, and getting it back."""
from typing import Any

from torch import nn
from torch.nn.parallel import DataParallel, DistributedDataParallel

from fastreid.utils import comm

__all__ = ["create_ddp_model", "unwrap_model"]


def create_ddp_model(model: nn.Module, *, find_unused_parameters: bool = False, **kwargs: Any) -> nn.Module:
    """Wrap ``model`` in ``DistributedDataParallel`` when there are several processes; else return it as is.

    Args:
        model: the model, already on its device (a CUDA model gets this process's local GPU as device).
        find_unused_parameters: let DDP search every step for parameters that got no gradient. It costs a
            graph traversal per iteration, so ask for it only when some parameters may get none (frozen
            layers, a classifier without a classification loss).
        kwargs: other ``DistributedDataParallel`` arguments; ``broadcast_buffers`` defaults to False
            (each process keeps its own BatchNorm statistics, as fast-reid does).
    """
    if comm.get_world_size() == 1:
        return model
    kwargs.setdefault("broadcast_buffers", False)
    if "device_ids" not in kwargs and next(model.parameters()).is_cuda:
        kwargs["device_ids"] = [comm.get_local_rank()]
    return DistributedDataParallel(model, find_unused_parameters=find_unused_parameters, **kwargs)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a ``(Distributed)DataParallel`` wrapper, or ``model`` itself."""
    while isinstance(model, (DistributedDataParallel, DataParallel)):
        model = model.module
    return model
