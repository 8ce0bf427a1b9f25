"""Helpers shared by losses and meta-architectures: distances, label masks and accuracy logging."""
from typing import Tuple

import torch

__all__ = ["euclidean_dist", "label_masks", "log_accuracy"]


def euclidean_dist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distances M×N between rows of ``x`` (M×D) and ``y`` (N×D).

    Squared distances are clamped at 1e-12 before the square root so gradients stay finite for identical
    rows.
    """
    sq = x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1, keepdim=True).t() - 2 * x @ y.t()
    return sq.clamp(min=1e-12).sqrt()


def label_masks(targets: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Boolean N×N masks of same-label (including i == j) and different-label pairs."""
    same = targets.view(-1, 1) == targets.view(1, -1)
    return same, ~same


def log_accuracy(pred_class_logits: torch.Tensor, targets: torch.Tensor, name: str = "cls_accuracy") -> None:
    """Record top-1 accuracy in the active event storage, if a training loop opened one.

    Args:
        pred_class_logits: B×K logits.
        targets: B labels.
    """
    from fastreid.utils.events import get_event_storage

    try:
        storage = get_event_storage()
    except RuntimeError:  # no training loop is recording
        return
    with torch.no_grad():
        acc = (pred_class_logits.argmax(dim=1) == targets).float().mean()
    storage.put_scalar(name, acc)
