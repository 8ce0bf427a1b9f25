"""torchreid's ``optim`` API: ``build_optimizer`` and ``build_lr_scheduler`` with torchreid's defaults.

Plain ``torch.optim`` objects, as torchreid returns: the schedulers are stepped once per epoch (torchreid's
engine calls ``scheduler.step()`` after each epoch). fastreid's own config path (SOLVER.OPT, SOLVER.SCHED in
:mod:`fastreid.solver`) steps per iteration and is what ``DefaultTrainer`` uses.
"""
import logging
from typing import List, Sequence, Union

import torch
from torch import nn

from .models import named_layers

__all__ = ["AVAI_OPTIMS", "AVAI_SCH", "build_lr_scheduler", "build_optimizer"]

logger = logging.getLogger(__name__)

AVAI_OPTIMS = ("adam", "amsgrad", "sgd", "rmsprop", "radam")
AVAI_SCH = ("single_step", "multi_step", "cosine")


def _param_groups(model: nn.Module, lr: float, new_layers: Union[str, Sequence[str]], base_lr_mult: float) -> List:
    """Two groups: the layers named in ``new_layers`` at ``lr``, all others at ``lr * base_lr_mult``."""
    names = [new_layers] if isinstance(new_layers, str) else list(new_layers)
    names = [n for n in names if n]
    if not names:
        logger.warning("staged_lr is set but new_layers is empty: every layer gets lr * base_lr_mult")
    layers = named_layers(model)
    unknown = [n for n in names if n not in layers]
    if unknown:
        raise ValueError(f"new_layers {unknown} are not layers of the model; its layers: {list(layers)}")
    base = [p for key, m in layers.items() if key not in names for p in m.parameters()]
    new = [p for key in names for p in layers[key].parameters()]
    # Parameters held directly by the model, outside any layer, are base parameters too.
    listed = {id(p) for p in base + new}
    base += [p for p in model.parameters() if id(p) not in listed]
    return [{"params": base, "lr": lr * base_lr_mult}, {"params": new}]


def build_optimizer(
    model: nn.Module,
    optim: str = "adam",
    lr: float = 0.0003,
    weight_decay: float = 5e-04,
    momentum: float = 0.9,
    sgd_dampening: float = 0,
    sgd_nesterov: bool = False,
    rmsprop_alpha: float = 0.99,
    adam_beta1: float = 0.9,
    adam_beta2: float = 0.99,
    staged_lr: bool = False,
    new_layers: Union[str, Sequence[str]] = "",
    base_lr_mult: float = 0.1,
) -> torch.optim.Optimizer:
    """An optimizer over ``model``'s parameters, as torchreid builds it.

    Args:
        model: the model (a :class:`fastreid.torchreid.models.TorchreidModel` or any module).
        optim: "adam", "amsgrad" (Adam with AMSGrad), "sgd", "rmsprop" or "radam" (rectified Adam with
            decoupled weight decay, as torchreid's RAdam).
        lr: learning rate (of the new layers with ``staged_lr``).
        weight_decay: L2 penalty (decoupled for radam).
        momentum: momentum of sgd and rmsprop.
        sgd_dampening, sgd_nesterov: sgd's dampening and Nesterov momentum.
        rmsprop_alpha: rmsprop's smoothing constant.
        adam_beta1, adam_beta2: betas of adam, amsgrad and radam.
        staged_lr: give the layers in ``new_layers`` ``lr`` and every other layer ``lr * base_lr_mult``.
        new_layers: torchreid layer names (e.g. "classifier", or ["fc", "classifier"]; see
            :func:`fastreid.torchreid.models.named_layers`).
        base_lr_mult: the base layers' learning-rate factor with ``staged_lr``.

    Returns:
        The optimizer; with ``staged_lr`` its param_groups are [base layers, new layers].

    Raises:
        TypeError: when ``model`` is not a module.
        ValueError: for an unknown ``optim`` or a name in ``new_layers`` that is not a layer.
    """
    if optim not in AVAI_OPTIMS:
        raise ValueError(f"Unsupported optim: '{optim}'. Must be one of {list(AVAI_OPTIMS)}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model given to build_optimizer must be an nn.Module, got {type(model).__name__}")
    params = _param_groups(model, lr, new_layers, base_lr_mult) if staged_lr else model.parameters()
    betas = (adam_beta1, adam_beta2)
    if optim in ("adam", "amsgrad"):
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, betas=betas, amsgrad=optim == "amsgrad")
    if optim == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                               dampening=sgd_dampening, nesterov=sgd_nesterov)
    if optim == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=momentum, weight_decay=weight_decay, alpha=rmsprop_alpha)
    return torch.optim.RAdam(params, lr=lr, weight_decay=weight_decay, betas=betas, decoupled_weight_decay=True)


def build_lr_scheduler(
    optimizer: torch.optim.Optimizer,
    lr_scheduler: str = "single_step",
    stepsize: Union[int, Sequence[int]] = 1,
    gamma: float = 0.1,
    max_epoch: int = 1,
) -> torch.optim.lr_scheduler.LRScheduler:
    """An epoch-stepped learning-rate schedule, as torchreid builds it.

    Args:
        optimizer: the optimizer whose rates it sets.
        lr_scheduler: "single_step" (×gamma every ``stepsize`` epochs), "multi_step" (×gamma at each epoch of
            the list ``stepsize``) or "cosine" (cosine annealing to 0 over ``max_epoch`` epochs).
        stepsize: an int for single_step (a list gives its last entry, as torchreid), a list for multi_step.
        gamma: the decay factor of the step schedules.
        max_epoch: the cosine schedule's length in epochs.

    Raises:
        ValueError: for an unknown ``lr_scheduler``.
        TypeError: for a ``stepsize`` of the wrong kind.
    """
    if lr_scheduler not in AVAI_SCH:
        raise ValueError(f"Unsupported scheduler: '{lr_scheduler}'. Must be one of {list(AVAI_SCH)}")
    if lr_scheduler == "single_step":
        if isinstance(stepsize, (list, tuple)):
            stepsize = stepsize[-1]
        if not isinstance(stepsize, int):
            raise TypeError(f"For single_step lr_scheduler, stepsize must be an integer, got {type(stepsize).__name__}")
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=stepsize, gamma=gamma)
    if lr_scheduler == "multi_step":
        if not isinstance(stepsize, (list, tuple)):
            raise TypeError(f"For multi_step lr_scheduler, stepsize must be a list, got {type(stepsize).__name__}")
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(stepsize), gamma=gamma)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, float(max_epoch))
