"""Optimizers, learning-rate schedules and gradient clipping, built from ``SOLVER.*``."""
from .build import (
    OPTIMIZER_REGISTRY,
    build_grad_clipper,
    build_lr_scheduler,
    build_optimizer,
    get_default_optimizer_params,
)
from .lr_scheduler import EpochWarmupMultiplier, LRMultiplier

__all__ = [
    "OPTIMIZER_REGISTRY",
    "EpochWarmupMultiplier",
    "LRMultiplier",
    "build_grad_clipper",
    "build_lr_scheduler",
    "build_optimizer",
    "get_default_optimizer_params",
]
