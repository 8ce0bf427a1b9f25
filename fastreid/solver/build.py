"""Builders of the optimizer, the learning-rate schedule and the gradient clipper from ``SOLVER.*``."""
import functools
import inspect
import logging
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import torch
from fvcore.common.param_scheduler import CosineParamScheduler, ParamScheduler
from torch import nn

from fastreid.config import CfgNode
from fastreid.utils.registry import Registry

from .lr_scheduler import (
    EpochWarmupMultiplier,
    LRMultiplier,
    build_warmup_param_scheduler,
    main_schedule_start_epoch,
    multi_step_param_scheduler,
    warmup_epochs,
)
from .optimizer_impl import construct_optimizer

__all__ = [
    "LR_SCHEDULER_REGISTRY",
    "OPTIMIZER_REGISTRY",
    "build_grad_clipper",
    "build_lr_scheduler",
    "build_optimizer",
    "get_default_optimizer_params",
]

logger = logging.getLogger(__name__)

OPTIMIZER_REGISTRY = Registry("OPTIMIZER")
OPTIMIZER_REGISTRY.__doc__ = """
Optimizer classes added by projects, looked up by SOLVER.OPT before ``torch.optim``. A registered class is
constructed like a ``torch.optim.Optimizer``: ``cls(param_groups, lr=..., weight_decay=..., ...)``.
"""

LR_SCHEDULER_REGISTRY = Registry("LR_SCHEDULER")
LR_SCHEDULER_REGISTRY.__doc__ = """
Main learning-rate schedules by name (SOLVER.SCHED), as builder functions ``builder(cfg, num_epochs) ->
(scheduler, span)``. ``scheduler`` is an fvcore ``ParamScheduler`` giving the multiplier of each group's base
learning rate as a function of the progress ``where`` in [0, 1]; at ``k`` epochs into the main schedule the
multiplier is ``scheduler(min(k, span) / span)``. ``num_epochs`` (>= 1) is the length of the main schedule:
SOLVER.MAX_EPOCH minus the warmup and delay epochs. Warmup and delay are applied around it by
:func:`build_lr_scheduler`.
"""

_NORM_TYPES = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*, SyncBatchNorm, InstanceNorm* and their subclasses
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
)

GradClipper = Callable[[Iterable[torch.Tensor]], None]


def get_default_optimizer_params(
    model: nn.Module,
    *,
    base_lr: float,
    weight_decay: float,
    weight_decay_norm: float,
    bias_lr_factor: float = 1.0,
    weight_decay_bias: Optional[float] = None,
    heads_lr_factor: float = 1.0,
) -> List[Dict[str, Any]]:
    """Groups the model's parameters by (learning rate, weight decay).

    Rules, applied in this order: normalization layers' parameters get ``weight_decay_norm``; biases get
    ``base_lr * bias_lr_factor`` and ``weight_decay_bias``; parameters of modules under the top-level
    ``heads`` module have their learning rate multiplied by ``heads_lr_factor``. Parameters that do not
    require grad are included (hooks such as LayerFreeze toggle ``requires_grad``; the optimizer skips
    parameters without a gradient). Shared parameters appear once.

    Args:
        model: the model.
        base_lr: learning rate of ordinary parameters.
        weight_decay: weight decay of ordinary parameters.
        weight_decay_norm: weight decay of normalization layers' parameters.
        bias_lr_factor: learning-rate multiplier of biases.
        weight_decay_bias: weight decay of biases; None = as the other parameters of their module.
        heads_lr_factor: learning-rate multiplier of the ``heads`` module's parameters.

    Returns:
        list[dict]: one optimizer group per distinct (lr, weight_decay), each with "params", "lr",
        "weight_decay", in order of first appearance.
    """
    groups: Dict[Tuple[float, float], List[nn.Parameter]] = {}
    seen = set()
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if param in seen:
                continue
            seen.add(param)
            lr, decay = base_lr, weight_decay
            if isinstance(module, _NORM_TYPES):
                decay = weight_decay_norm
            if param_name == "bias":
                lr = base_lr * bias_lr_factor
                if weight_decay_bias is not None:
                    decay = weight_decay_bias
            if module_name.split(".")[0] == "heads":
                lr *= heads_lr_factor
            groups.setdefault((lr, decay), []).append(param)
    return [{"params": params, "lr": lr, "weight_decay": decay} for (lr, decay), params in groups.items()]


def _optimizer_class(name: str) -> type:
    if name in OPTIMIZER_REGISTRY:
        return OPTIMIZER_REGISTRY.get(name)
    cls = getattr(torch.optim, name, None)
    if not (inspect.isclass(cls) and issubclass(cls, torch.optim.Optimizer)):
        known = sorted(
            n for n, c in vars(torch.optim).items() if inspect.isclass(c) and issubclass(c, torch.optim.Optimizer)
        )
        raise ValueError(
            f"SOLVER.OPT '{name}' is neither in OPTIMIZER_REGISTRY ({sorted(OPTIMIZER_REGISTRY.names())}) "
            f"nor a torch.optim optimizer ({', '.join(n for n in known if n != 'Optimizer')})."
        )
    return cls


def build_optimizer(cfg: CfgNode, model: nn.Module) -> torch.optim.Optimizer:
    """Builds SOLVER.OPT over :func:`get_default_optimizer_params` groups.

    SOLVER.MOMENTUM and SOLVER.NESTEROV are passed to optimizers whose constructor takes them (SGD,
    RMSprop, ...); SOLVER.OPTIMIZER_IMPL picks the for-loop, foreach or fused implementation (see
    :func:`~fastreid.solver.optimizer_impl.construct_optimizer`). Gradient clipping is not part of the
    optimizer: see :func:`build_grad_clipper`.

    Returns:
        torch.optim.Optimizer: with one group per distinct (lr, weight_decay).
    """
    solver = cfg.SOLVER
    params = get_default_optimizer_params(
        model,
        base_lr=solver.BASE_LR,
        weight_decay=solver.WEIGHT_DECAY,
        weight_decay_norm=solver.WEIGHT_DECAY_NORM,
        bias_lr_factor=solver.BIAS_LR_FACTOR,
        weight_decay_bias=solver.WEIGHT_DECAY_BIAS,
        heads_lr_factor=solver.HEADS_LR_FACTOR,
    )
    cls = _optimizer_class(solver.OPT)
    kwargs: Dict[str, Any] = {"lr": solver.BASE_LR, "weight_decay": solver.WEIGHT_DECAY}
    accepted = inspect.signature(cls.__init__).parameters
    if "momentum" in accepted:
        kwargs["momentum"] = solver.MOMENTUM
    if "nesterov" in accepted:
        # torch rejects Nesterov without momentum.
        kwargs["nesterov"] = bool(solver.NESTEROV) and solver.MOMENTUM > 0
    optimizer = construct_optimizer(cls, params, kwargs, solver.OPTIMIZER_IMPL)
    logger.info(
        "Optimizer %s (SOLVER.OPTIMIZER_IMPL %s) with %d parameter groups (lr, weight_decay): %s",
        cls.__name__,
        solver.OPTIMIZER_IMPL,
        len(params),
        [(g["lr"], g["weight_decay"]) for g in params],
    )
    return optimizer


def build_lr_scheduler(
    cfg: CfgNode, optimizer: torch.optim.Optimizer, iters_per_epoch: int
) -> LRMultiplier:
    """Builds the learning-rate schedule of SOLVER.* as one scheduler stepped once per iteration.

    Learning rate of a group at global iteration ``i`` (epoch ``e = i // iters_per_epoch``):
    ``group_base_lr * warmup(i) * main(k)``, where

    - ``warmup(i)`` follows SOLVER.WARMUP_METHOD from SOLVER.WARMUP_FACTOR to 1 over the first
      SOLVER.WARMUP_ITERS iterations (linear: ``f + (1 - f) * i / W``; constant: ``f``; exp:
      ``f ** (1 - i / W)``), and is 1 afterwards;
    - ``k = max(0, e - S)`` epochs into the main schedule, ``S = max(DELAY_EPOCHS, epoch of the last warmup
      iteration)`` (fast-reid steps its main schedule only after warmup and the delay epochs);
    - ``main(k)`` is the schedule SOLVER.SCHED names in :data:`LR_SCHEDULER_REGISTRY`, built over
      ``T = MAX_EPOCH - max(DELAY_EPOCHS, ceil(WARMUP_ITERS / iters_per_epoch))`` epochs as in fast-reid.
      Built in: MultiStepLR, ``GAMMA ** (number of SOLVER.STEPS <= k)``; CosineAnnealingLR,
      ``r + (1 - r) * (1 + cos(pi * k / T)) / 2`` with ``r = ETA_MIN_LR / BASE_LR``. Groups whose lr is
      scaled by a factor (biases, heads) end at ETA_MIN_LR times that factor.

    Args:
        cfg: the config.
        optimizer: optimizer whose groups' current ``lr`` are the base learning rates.
        iters_per_epoch: iterations per epoch.

    Returns:
        LRMultiplier: a torch scheduler; call ``.step()`` after every ``optimizer.step()``; resumable with
        ``state_dict()`` / ``load_state_dict()``.

    Raises:
        ValueError: for a SOLVER.SCHED not in LR_SCHEDULER_REGISTRY (naming the registered ones) or an
            unknown SOLVER.WARMUP_METHOD.
        TypeError: when the registered schedule does not return ``(ParamScheduler, span >= 1)``.
    """
    solver = cfg.SOLVER
    warmup_iters = int(solver.WARMUP_ITERS)
    main_epochs = solver.MAX_EPOCH - max(warmup_epochs(warmup_iters, iters_per_epoch), solver.DELAY_EPOCHS)
    main, span = _build_main_schedule(cfg, max(int(main_epochs), 1))
    warmup = build_warmup_param_scheduler(solver.WARMUP_METHOD, solver.WARMUP_FACTOR) if warmup_iters > 0 else None
    multiplier = EpochWarmupMultiplier(
        main,
        span,
        start_epoch=main_schedule_start_epoch(solver.DELAY_EPOCHS, warmup_iters, iters_per_epoch),
        iters_per_epoch=iters_per_epoch,
        warmup_sched=warmup,
        warmup_iters=warmup_iters,
    )
    return LRMultiplier(optimizer, multiplier)


@LR_SCHEDULER_REGISTRY.register()
def MultiStepLR(cfg: CfgNode, num_epochs: int) -> Tuple[ParamScheduler, int]:
    """Multiply by SOLVER.GAMMA at each epoch of SOLVER.STEPS (counted from the start of the main schedule)."""
    return multi_step_param_scheduler(num_epochs, cfg.SOLVER.STEPS, cfg.SOLVER.GAMMA)


@LR_SCHEDULER_REGISTRY.register()
def CosineAnnealingLR(cfg: CfgNode, num_epochs: int) -> Tuple[ParamScheduler, int]:
    """Half a cosine from 1 down to SOLVER.ETA_MIN_LR / SOLVER.BASE_LR over ``num_epochs``."""
    solver = cfg.SOLVER
    eta_min_ratio = solver.ETA_MIN_LR / solver.BASE_LR if solver.BASE_LR > 0 else 0.0
    return CosineParamScheduler(1.0, eta_min_ratio), num_epochs


def _build_main_schedule(cfg: CfgNode, num_epochs: int) -> Tuple[ParamScheduler, int]:
    name = cfg.SOLVER.SCHED
    try:
        builder = LR_SCHEDULER_REGISTRY.get(name)
    except KeyError as e:
        raise ValueError(f"Unknown SOLVER.SCHED '{name}'. {e.args[0]}") from None
    built = builder(cfg, num_epochs)
    if not (
        isinstance(built, tuple) and len(built) == 2 and isinstance(built[0], ParamScheduler)
        and isinstance(built[1], int) and built[1] >= 1
    ):
        raise TypeError(
            f"LR_SCHEDULER_REGISTRY entry '{name}' must return (ParamScheduler, span >= 1), got {built!r}"
        )
    return built


def _clip_per_parameter_norm(params: Iterable[torch.Tensor], max_norm: float, norm_type: float) -> None:
    for p in params:
        if p.grad is not None:
            torch.nn.utils.clip_grad_norm_(p, max_norm, norm_type)


def build_grad_clipper(cfg: CfgNode) -> Optional[GradClipper]:
    """Builds the gradient clipper of SOLVER.CLIP_GRADIENTS, or None when it is disabled.

    CLIP_TYPE "value" clamps every gradient element to [-CLIP_VALUE, CLIP_VALUE]; "norm" rescales each
    parameter's gradient to a NORM_TYPE-norm of at most CLIP_VALUE (fast-reid's per-parameter rule);
    "full_model" does the same with the norm of all gradients together. The trainer calls the clipper on
    the model's parameters after backward (and after unscaling under AMP), before ``optimizer.step()``.

    Returns:
        callable or None: ``clipper(parameters)`` clipping gradients in place.
    """
    clip = cfg.SOLVER.CLIP_GRADIENTS
    if not clip.ENABLED:
        return None
    clip_type = clip.CLIP_TYPE
    if clip_type == "value":
        return functools.partial(torch.nn.utils.clip_grad_value_, clip_value=clip.CLIP_VALUE)
    if clip_type == "norm":
        return functools.partial(_clip_per_parameter_norm, max_norm=clip.CLIP_VALUE, norm_type=clip.NORM_TYPE)
    if clip_type == "full_model":
        return functools.partial(torch.nn.utils.clip_grad_norm_, max_norm=clip.CLIP_VALUE, norm_type=clip.NORM_TYPE)
    raise ValueError(
        f"Unknown SOLVER.CLIP_GRADIENTS.CLIP_TYPE '{clip_type}'; use 'value', 'norm' or 'full_model'."
    )
