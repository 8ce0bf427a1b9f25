"""Logit distillation losses: KL, Jensen–Shannon and symmetric KL divergence between softened class
distributions (Hinton et al. 2015), as the ``Distiller`` meta-architecture uses them."""
from typing import Callable, Dict, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DIVERGENCES", "LogitDistillationLoss", "js_divergence", "kl_divergence", "symmetric_kl_divergence"]


def _kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) per row, from log-probabilities B×K."""
    return (log_p.exp() * (log_p - log_q)).sum(dim=1)


def kl_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T² · KL(p_t ‖ p_s)`` averaged over the batch, with ``p = softmax(logits / T)`` (Hinton et al. 2015;
    the T² keeps the gradient scale independent of T).

    Args:
        student_logits, teacher_logits: B×K.
        temperature: T > 0.
    """
    log_s = F.log_softmax(student_logits / temperature, dim=1)
    log_t = F.log_softmax(teacher_logits / temperature, dim=1)
    return _kl(log_t, log_s).mean() * temperature**2


def symmetric_kl_divergence(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``T² · (KL(p_t ‖ p_s) + KL(p_s ‖ p_t)) / 2`` averaged over the batch: what fast-reid's Distiller
    computes and logs as ``loss_jsdiv``.

    Args:
        student_logits, teacher_logits: B×K.
        temperature: T > 0.
    """
    return (kl_divergence(student_logits, teacher_logits, temperature)
            + kl_divergence(teacher_logits, student_logits, temperature)) / 2


def js_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Jensen–Shannon divergence ``T² · (KL(p_t ‖ m) + KL(p_s ‖ m)) / 2`` with ``m = (p_t + p_s) / 2``,
    averaged over the batch.

    Args:
        student_logits, teacher_logits: B×K.
        temperature: T > 0.
    """
    log_s = F.log_softmax(student_logits / temperature, dim=1)
    log_t = F.log_softmax(teacher_logits / temperature, dim=1)
    log_m = torch.logsumexp(torch.stack([log_s, log_t]), dim=0) - torch.log(torch.tensor(2.0, dtype=log_s.dtype))
    return (_kl(log_t, log_m) + _kl(log_s, log_m)).mean() / 2 * temperature**2


# KD.LOSS name -> divergence of (student logits, teacher logits, temperature).
DIVERGENCES: Dict[str, Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]] = {
    "kl": kl_divergence,
    "js": js_divergence,
    "symkl": symmetric_kl_divergence,
}


class LogitDistillationLoss(nn.Module):
    """The divergence between the student's class logits and each teacher's, averaged over teachers.

    Args:
        divergence: a name in :data:`DIVERGENCES` (KD.LOSS).
        temperature: softmax temperature T (KD.TEMPERATURE).
        scale: weight of the term in the total loss (KD.SCALE).
    """

    def __init__(self, divergence: str = "kl", temperature: float = 16.0, scale: float = 1.0) -> None:
        super().__init__()
        if divergence not in DIVERGENCES:
            raise ValueError(f"KD.LOSS must be one of {sorted(DIVERGENCES)}, got {divergence!r}")
        if temperature <= 0:
            raise ValueError(f"KD.TEMPERATURE must be positive, got {temperature}")
        self.divergence = divergence
        self.temperature = float(temperature)
        self.scale = float(scale)

    def forward(self, student_logits: torch.Tensor, teacher_logits: Sequence[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """
        Args:
            student_logits: B×K.
            teacher_logits: one B×K tensor per teacher (treated as constants).

        Returns:
            {"loss_kd": scale · mean over teachers of the divergence}.
        """
        fn = DIVERGENCES[self.divergence]
        loss = sum(fn(student_logits, t.detach(), self.temperature) for t in teacher_logits) / len(teacher_logits)
        return {"loss_kd": loss * self.scale}

    def extra_repr(self) -> str:
        return f"divergence={self.divergence}, temperature={self.temperature}, scale={self.scale}"
