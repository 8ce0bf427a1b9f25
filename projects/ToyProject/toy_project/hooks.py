"""``WeightNormHook``: logs the L2 norm of the trainable weights, a cheap sign of divergence or decay."""
import torch

from fastreid.engine import HookBase

__all__ = ["WeightNormHook"]


class WeightNormHook(HookBase):
    """Every ``period`` iterations, put the L2 norm of all trainable parameters as the scalar "weight_norm".

    Uses only documented trainer attributes: ``trainer.model``, ``trainer.iter`` and ``trainer.storage``.

    Args:
        period: iterations between two measurements.
    """

    def __init__(self, period: int) -> None:
        if period <= 0:
            raise ValueError(f"period must be positive, got {period}")
        self.period = period

    def after_step(self) -> None:
        if (self.trainer.iter + 1) % self.period:
            return
        with torch.no_grad():
            squares = [p.detach().float().pow(2).sum() for p in self.trainer.model.parameters() if p.requires_grad]
            norm = torch.stack(squares).sum().sqrt().item() if squares else 0.0
        self.trainer.storage.put_scalar("weight_norm", norm, smoothing_hint=False)
