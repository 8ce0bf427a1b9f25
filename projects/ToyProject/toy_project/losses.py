"""``RingLoss`` (Zheng et al. 2018): a soft feature-norm constraint with a learned radius."""
from typing import Dict

import torch
from torch import nn

from fastreid.config import configurable
from fastreid.modeling import LOSS_REGISTRY
from fastreid.modeling.losses import ReIDLoss

__all__ = ["RingLoss"]


@LOSS_REGISTRY.register()
class RingLoss(ReIDLoss):
    """``mean((‖f‖ − R)²) / 2`` over the batch features f, with the radius R learned; term ``loss_ring``.

    Add "RingLoss" to MODEL.LOSSES.NAME; MODEL.LOSSES.RING.SCALE (from ``add_toy_config``) weights it.

    Args:
        scale: weight of the term.
        radius: initial value of R.
    """

    input_key = "features"
    term = "ring"

    @configurable
    def __init__(self, *, scale: float = 0.01, radius: float = 1.0) -> None:
        super().__init__(scale)
        self.radius = nn.Parameter(torch.tensor(float(radius)))

    @classmethod
    def from_config(cls, cfg) -> Dict:
        return {"scale": cfg.MODEL.LOSSES.RING.SCALE}

    def compute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """
        Args:
            inputs: B×D features.
            targets: B labels (unused: the constraint is the same for every identity).
        """
        return 0.5 * (inputs.norm(dim=1) - self.radius).pow(2).mean()
