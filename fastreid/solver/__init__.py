"""Optimizers, learning-rate schedules and gradient clipping, built from ``SOLVER.*``."""
from .build import (
    LR_SCHEDULER_REGISTRY,
    OPTIMIZER_REGISTRY,
    build_grad_clipper,
    build_lr_scheduler,
    build_optimizer,
    get_default_optimizer_params,
)
from .lr_scheduler import EpochWarmupMultiplier, LRMultiplier

__all__ = [
    "LR_SCHEDULER_REGISTRY",
    "OPTIMIZER_REGISTRY",
    "EpochWarmupMultiplier",
    "LRMultiplier",
    "build_grad_clipper",
    "build_lr_scheduler",
    "build_optimizer",
    "get_default_optimizer_params",
]
