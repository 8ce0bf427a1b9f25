"""The loss registry and ``build_losses``."""
from typing import Dict

import torch
from torch import nn

from fastreid.utils.registry import Registry

__all__ = ["LOSS_REGISTRY", "ReIDLoss", "build_losses"]

LOSS_REGISTRY = Registry("LOSS")
LOSS_REGISTRY.__doc__ = """Losses by class name (the names in MODEL.LOSSES.NAME), built as ``cls(cfg)``.
Each is a :class:`ReIDLoss`: called with the head's training outputs and the targets, it returns a dict of
weighted scalar terms named ``loss_<term>``."""


class ReIDLoss(nn.Module):
    """Base of registered losses.

    A subclass sets ``input_key`` (the head output it consumes: "cls_outputs" for classification losses,
    "features" for metric losses) and ``term`` (the name of its ``loss_<term>`` entry), and implements
    :meth:`compute`.

    Args:
        scale: weight of the term in the total loss.
    """

    input_key: str = "cls_outputs"
    term: str = ""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def compute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The unweighted scalar loss of ``inputs`` (B×K logits or B×D features) and B long ``targets``."""
        raise NotImplementedError

    def forward(self, outputs: Dict[str, torch.Tensor], targets: torch.Tensor) -> Dict[str, torch.Tensor]:
        """
        Args:
            outputs: a head's training outputs; this loss reads ``outputs[self.input_key]``, a tensor or a list of
                tensors (part-based heads such as PCB's: the loss is averaged over them, as torchreid does).
            targets: B identity labels (long).

        Returns:
            {"loss_<term>": scale * loss}.
        """
        inputs = outputs[self.input_key]
        if isinstance(inputs, (list, tuple)):
            loss = sum(self.compute(x, targets) for x in inputs) / len(inputs)
        else:
            loss = self.compute(inputs, targets)
        return {f"loss_{self.term}": loss * self.scale}

    def extra_repr(self) -> str:
        return f"input={self.input_key}, scale={self.scale}"


def build_losses(cfg) -> nn.ModuleList:
    """Build every loss named in ``cfg.MODEL.LOSSES.NAME``, in order."""
    losses = nn.ModuleList()
    for name in cfg.MODEL.LOSSES.NAME:
        loss = LOSS_REGISTRY.get(name)(cfg)
        if not isinstance(loss, ReIDLoss):
            raise TypeError(f"Loss '{name}' built {type(loss).__name__}, not a ReIDLoss")
        losses.append(loss)
    return losses
