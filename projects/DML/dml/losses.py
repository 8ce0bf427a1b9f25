"""The mimicry term of deep mutual learning (Zhang et al., CVPR 2018)."""
import torch
import torch.nn.functional as F

__all__ = ["mutual_kl_loss"]


def mutual_kl_loss(logits: torch.Tensor, peer_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``T² · mean_b KL(p_peer ‖ p)`` with ``p = softmax(logits / T)``, pulling a network towards its peer's
    softened predictions; the peer's are detached, so it is a fixed target of this term.

    Args:
        logits: B×K logits of the network being trained.
        peer_logits: B×K logits of the other network.
        temperature: T > 0.

    Returns:
        The scalar loss.
    """
    if temperature <= 0:
        raise ValueError(f"The mimicry temperature (MODEL.DML.TEMPERATURE) must be positive, got {temperature}")
    if logits.shape != peer_logits.shape:
        raise ValueError(f"Mutual learning needs logits of the same shape, got {tuple(logits.shape)} and "
                         f"{tuple(peer_logits.shape)}: both networks must classify the same identities")
    log_p = F.log_softmax(logits / temperature, dim=1)
    log_target = F.log_softmax(peer_logits.detach() / temperature, dim=1)
    return F.kl_div(log_p, log_target, reduction="batchmean", log_target=True) * temperature ** 2
