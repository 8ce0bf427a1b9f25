"""Losses, registered in ``LOSS_REGISTRY`` by class name (the names of MODEL.LOSSES.NAME)."""
from .build import LOSS_REGISTRY, ReIDLoss, build_losses
from .classification import CrossEntropyLoss, FocalLoss, cross_entropy_loss, focal_loss
from .distillation import LogitDistillationLoss, js_divergence, kl_divergence, symmetric_kl_divergence
from .memory import memory_cosface_loss
from .metric import CircleLoss, CosFaceLoss, TripletLoss, pairwise_circle_loss, pairwise_cosface_loss, triplet_loss
from .utils import log_accuracy

__all__ = [
    "LOSS_REGISTRY",
    "CircleLoss",
    "CosFaceLoss",
    "CrossEntropyLoss",
    "FocalLoss",
    "LogitDistillationLoss",
    "ReIDLoss",
    "TripletLoss",
    "build_losses",
    "cross_entropy_loss",
    "focal_loss",
    "js_divergence",
    "kl_divergence",
    "log_accuracy",
    "memory_cosface_loss",
    "pairwise_circle_loss",
    "pairwise_cosface_loss",
    "symmetric_kl_divergence",
    "triplet_loss",
]
