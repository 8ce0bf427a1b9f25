"""Classification losses on logits: cross-entropy with (adaptive) label smoothing, and focal loss."""
from typing import Dict

import torch
import torch.nn.functional as F

from fastreid.config import configurable

from .build import LOSS_REGISTRY, ReIDLoss

__all__ = ["CrossEntropyLoss", "FocalLoss", "cross_entropy_loss", "focal_loss"]


def cross_entropy_loss(logits: torch.Tensor, targets: torch.Tensor, eps: float, alpha: float = 0.2) -> torch.Tensor:
    """Cross-entropy against smoothed labels (Szegedy et al. 2016), averaged over the batch.

    The target class gets probability ``1 − ε``, every other class ``ε / (K − 1)``.

    Args:
        logits: B×K.
        targets: B labels.
        eps: smoothing ε ≥ 0; a negative value selects adaptive smoothing, ε_i = ``alpha`` · p_i(target)
            from the (detached) predicted probability of each sample, as fast-reid does.
        alpha: factor of the adaptive smoothing.
    """
    num_classes = logits.size(1)
    log_probs = F.log_softmax(logits, dim=1)
    with torch.no_grad():
        if eps >= 0:
            smooth = torch.full((logits.size(0), 1), float(eps), dtype=logits.dtype, device=logits.device)
        else:
            smooth = alpha * log_probs.exp().gather(1, targets[:, None])
        soft_targets = (smooth / max(num_classes - 1, 1)).expand_as(log_probs).clone()
        soft_targets.scatter_(1, targets[:, None], 1 - smooth)
    return -(soft_targets * log_probs).sum(dim=1).mean()


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    """Softmax focal loss (Lin et al. 2017): mean of ``−α (1 − p_t)^γ log p_t`` over the batch.

    Args:
        logits: B×K.
        targets: B labels.
    """
    log_pt = F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
    return (-alpha * (1 - log_pt.exp()).pow(gamma) * log_pt).mean()


@LOSS_REGISTRY.register()
class CrossEntropyLoss(ReIDLoss):
    """Cross-entropy with label smoothing (MODEL.LOSSES.CE): term ``loss_cls``."""

    term = "cls"

    @configurable
    def __init__(self, *, eps: float = 0.0, alpha: float = 0.2, scale: float = 1.0) -> None:
        super().__init__(scale)
        self.eps = eps
        self.alpha = alpha

    @classmethod
    def from_config(cls, cfg) -> Dict:
        ce = cfg.MODEL.LOSSES.CE
        return {"eps": ce.EPSILON, "alpha": ce.ALPHA, "scale": ce.SCALE}

    def compute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return cross_entropy_loss(inputs, targets, self.eps, self.alpha)


@LOSS_REGISTRY.register()
class FocalLoss(ReIDLoss):
    """Softmax focal loss (MODEL.LOSSES.FL): term ``loss_focal``."""

    term = "focal"

    @configurable
    def __init__(self, *, alpha: float = 0.25, gamma: float = 2.0, scale: float = 1.0) -> None:
        super().__init__(scale)
        self.alpha = alpha
        self.gamma = gamma

    @classmethod
    def from_config(cls, cfg) -> Dict:
        fl = cfg.MODEL.LOSSES.FL
        return {"alpha": fl.ALPHA, "gamma": fl.GAMMA, "scale": fl.SCALE}

    def compute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return focal_loss(inputs, targets, self.alpha, self.gamma)
