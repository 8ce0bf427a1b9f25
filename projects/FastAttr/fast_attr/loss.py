"""``BinaryCrossEntropyLoss``: multi-label BCE weighted by each attribute's positive ratio (fast-reid's FastAttr)."""
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from fastreid.config import configurable
from fastreid.modeling import LOSS_REGISTRY
from fastreid.modeling.losses import ReIDLoss

__all__ = ["BinaryCrossEntropyLoss"]


@LOSS_REGISTRY.register()
class BinaryCrossEntropyLoss(ReIDLoss):
    """Mean over the B×A entries of ``w * BCE(logit, label)``; term ``loss_bce``.

    With weighting on, ``w = exp(1 - r)`` for a present attribute and ``exp(r)`` for an absent one, where r is
    the attribute's share of positives in the training set (Li et al. 2015, as fast-reid's FastAttr): rare
    positives weigh up to e, common ones down to 1. fast-reid divides the weighted sum by its number of non-zero
    entries, which is B×A as BCE is positive; the mean here is the same.

    Add "BinaryCrossEntropyLoss" to MODEL.LOSSES.NAME; MODEL.LOSSES.BCE.SCALE weights it and
    MODEL.LOSSES.BCE.WEIGHT_ENABLED switches the weighting. The ratios come from the training set through
    :meth:`set_positive_ratios` (the project's trainer calls it); they are not saved in checkpoints.

    Args:
        scale: weight of the term.
        weight_enabled: weight by the positive ratios.
    """

    input_key = "cls_outputs"
    term = "bce"

    @configurable
    def __init__(self, *, scale: float = 1.0, weight_enabled: bool = True) -> None:
        super().__init__(scale)
        self.weight_enabled = weight_enabled
        self.register_buffer("positive_ratios", None, persistent=False)

    @classmethod
    def from_config(cls, cfg) -> Dict:
        return {"scale": cfg.MODEL.LOSSES.BCE.SCALE, "weight_enabled": cfg.MODEL.LOSSES.BCE.WEIGHT_ENABLED}

    def set_positive_ratios(self, ratios: Union[torch.Tensor, Sequence[float]]) -> None:
        """Set the (A,) share of positives of each attribute in the training set (values in [0, 1])."""
        ratios = torch.as_tensor(ratios, dtype=torch.float32).flatten()
        if ((ratios < 0) | (ratios > 1)).any():
            raise ValueError(f"positive ratios must lie in [0, 1], got {ratios.tolist()}")
        self.positive_ratios = ratios

    def weights(self, targets: torch.Tensor) -> Optional[torch.Tensor]:
        """B×A weights of the entries of ``targets`` (None when weighting is off)."""
        if not self.weight_enabled:
            return None
        if self.positive_ratios is None:
            raise RuntimeError("BinaryCrossEntropyLoss weights by the training set's positive ratios, which are not "
                               "set: call set_positive_ratios(train_set.positive_ratios) (the FastAttr trainer does), "
                               "or set MODEL.LOSSES.BCE.WEIGHT_ENABLED False")
        ratios = self.positive_ratios.to(targets.device)
        if ratios.numel() != targets.shape[1]:
            raise ValueError(f"{ratios.numel()} positive ratios for {targets.shape[1]} attributes")
        return torch.where(targets > 0.5, torch.exp(1 - ratios), torch.exp(ratios))

    def compute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """
        Args:
            inputs: B×A attribute logits.
            targets: B×A 0/1 attribute labels.
        """
        targets = targets.to(inputs.dtype)
        loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
        weights = self.weights(targets)
        return (loss if weights is None else loss * weights).mean()
