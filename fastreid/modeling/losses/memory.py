"""A metric loss of query features against a bank of labelled keys (MoCo's memory queue)."""
from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["memory_cosface_loss"]


def memory_cosface_loss(
    queries: torch.Tensor,
    targets: torch.Tensor,
    keys: torch.Tensor,
    key_labels: torch.Tensor,
    margin: float,
    gamma: float,
    exclude: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Pairwise CosFace loss of each query against a bank of keys (fast-reid's MoCo memory loss).

    With cosine similarities ``s_ij`` between query i and key j, key j is a positive of query i when it has
    the query's label and a negative when it has another label; keys labelled -1 (empty queue slots) and pairs
    marked in ``exclude`` are neither. Per query::

        softplus(logsumexp_{j positive}(-gamma * s_ij) + logsumexp_{j negative}(gamma * (s_ij + margin)))

    averaged over the queries that have at least one positive and one negative (0 when none has).

    Args:
        queries: B×D query features (normalised inside; gradients flow through them).
        targets: B labels of the queries.
        keys: M×D key features (normalised inside).
        key_labels: M labels of the keys; -1 marks an empty slot.
        margin: additive cosine margin on the negatives.
        gamma: scale of the similarities.
        exclude: optional B×M bool mask of pairs left out, e.g. each query's own key.

    Returns:
        The scalar loss.
    """
    sim = F.normalize(queries, dim=1) @ F.normalize(keys, dim=1).t()
    filled = (key_labels >= 0).view(1, -1)
    same = targets.view(-1, 1) == key_labels.view(1, -1)
    is_pos, is_neg = same & filled, ~same & filled
    if exclude is not None:
        is_pos, is_neg = is_pos & ~exclude, is_neg & ~exclude
    rows = is_pos.any(dim=1) & is_neg.any(dim=1)
    if not rows.any():
        return sim.sum() * 0.0
    logit_p = (-gamma * sim).masked_fill(~is_pos, float("-inf"))[rows]
    logit_n = (gamma * (sim + margin)).masked_fill(~is_neg, float("-inf"))[rows]
    return F.softplus(torch.logsumexp(logit_p, dim=1) + torch.logsumexp(logit_n, dim=1)).mean()
