"""Metric losses on embeddings: triplet with batch-hard or softmax-weighted mining, pairwise circle and
pairwise CosFace."""
from typing import Dict, Tuple

import torch
import torch.nn.functional as F

from fastreid.config import configurable

from .build import LOSS_REGISTRY, ReIDLoss
from .utils import euclidean_dist, label_masks

__all__ = [
    "CircleLoss",
    "CosFaceLoss",
    "TripletLoss",
    "pairwise_circle_loss",
    "pairwise_cosface_loss",
    "triplet_loss",
]


def _hard_mining(dist: torch.Tensor, is_pos: torch.Tensor, is_neg: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    # Hardest positive (largest distance) and hardest negative (smallest distance) per anchor.
    dist_ap = dist.masked_fill(~is_pos, float("-inf")).max(dim=1).values
    dist_an = dist.masked_fill(~is_neg, float("inf")).min(dim=1).values
    return dist_ap, dist_an


def _weighted_mining(dist: torch.Tensor, is_pos: torch.Tensor, is_neg: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    # Softmax-weighted mining (Ristani & Tomasi 2018): far positives and near negatives weigh most.
    w_ap = torch.softmax(dist.masked_fill(~is_pos, float("-inf")), dim=1)
    w_an = torch.softmax((-dist).masked_fill(~is_neg, float("-inf")), dim=1)
    return (dist * w_ap).sum(dim=1), (dist * w_an).sum(dim=1)


def triplet_loss(
    embedding: torch.Tensor, targets: torch.Tensor, margin: float, norm_feat: bool, hard_mining: bool
) -> torch.Tensor:
    """Triplet loss on Euclidean distances within the batch (Hermans et al. 2017).

    Per anchor, a positive distance d_ap and a negative distance d_an are mined (batch-hard: farthest positive
    and nearest negative; otherwise softmax-weighted averages), and the loss is the mean over anchors of
    ``[d_ap − d_an + margin]_+`` when margin > 0, or the soft margin ``log(1 + exp(d_ap − d_an))`` when
    margin is 0. Anchors without a negative in the batch are skipped.

    Args:
        embedding: B×D features.
        targets: B labels.
        margin: see above.
        norm_feat: L2-normalise the features first.
        hard_mining: batch-hard mining instead of softmax-weighted.
    """
    if norm_feat:
        embedding = F.normalize(embedding, dim=1)
    dist = euclidean_dist(embedding, embedding)
    is_pos, is_neg = label_masks(targets)
    valid = is_neg.any(dim=1)
    if not valid.any():
        return embedding.sum() * 0.0
    dist, is_pos, is_neg = dist[valid], is_pos[valid], is_neg[valid]
    mining = _hard_mining if hard_mining else _weighted_mining
    dist_ap, dist_an = mining(dist, is_pos, is_neg)
    if margin > 0:
        return F.relu(dist_ap - dist_an + margin).mean()
    return F.softplus(dist_ap - dist_an).mean()


def _pairwise_logits(embedding: torch.Tensor, targets: torch.Tensor):
    embedding = F.normalize(embedding, dim=1)
    sim = embedding @ embedding.t()
    is_pos, is_neg = label_masks(targets)
    is_pos = is_pos & ~torch.eye(len(targets), dtype=torch.bool, device=targets.device)
    return sim, is_pos, is_neg


def _pair_softplus(logit_p: torch.Tensor, logit_n: torch.Tensor, is_pos: torch.Tensor, is_neg: torch.Tensor):
    # softplus(logsumexp over positives + logsumexp over negatives), mean over anchors having both.
    valid = is_pos.any(dim=1) & is_neg.any(dim=1)
    if not valid.any():
        return logit_p.sum() * 0.0
    lse_p = torch.logsumexp(logit_p.masked_fill(~is_pos, float("-inf"))[valid], dim=1)
    lse_n = torch.logsumexp(logit_n.masked_fill(~is_neg, float("-inf"))[valid], dim=1)
    return F.softplus(lse_p + lse_n).mean()


def pairwise_circle_loss(embedding: torch.Tensor, targets: torch.Tensor, margin: float, gamma: float) -> torch.Tensor:
    """Pairwise circle loss (Sun et al. 2020) on cosine similarities within the batch.

    Per anchor: ``softplus(logsumexp_p(−γ α_p (s_p − Δ_p)) + logsumexp_n(γ α_n (s_n − Δ_n)))`` with
    ``α_p = [1 + m − s_p]_+``, ``α_n = [s_n + m]_+`` (no gradient), ``Δ_p = 1 − m``, ``Δ_n = m``; averaged over
    anchors that have a positive (other than themselves) and a negative.

    Args:
        embedding: B×D features (normalised inside).
        targets: B labels.
    """
    sim, is_pos, is_neg = _pairwise_logits(embedding, targets)
    alpha_p = torch.clamp_min(1 + margin - sim.detach(), 0.0)
    alpha_n = torch.clamp_min(sim.detach() + margin, 0.0)
    logit_p = -gamma * alpha_p * (sim - (1 - margin))
    logit_n = gamma * alpha_n * (sim - margin)
    return _pair_softplus(logit_p, logit_n, is_pos, is_neg)


def pairwise_cosface_loss(embedding: torch.Tensor, targets: torch.Tensor, margin: float, gamma: float) -> torch.Tensor:
    """Pairwise CosFace loss on cosine similarities within the batch.

    Per anchor: ``softplus(logsumexp_p(−γ s_p) + logsumexp_n(γ (s_n + m)))``, averaged over anchors that have
    a positive (other than themselves) and a negative.

    Args:
        embedding: B×D features (normalised inside).
        targets: B labels.
    """
    sim, is_pos, is_neg = _pairwise_logits(embedding, targets)
    return _pair_softplus(-gamma * sim, gamma * (sim + margin), is_pos, is_neg)


@LOSS_REGISTRY.register()
class TripletLoss(ReIDLoss):
    """Triplet loss (MODEL.LOSSES.TRI) on the head's "features": term ``loss_triplet``."""

    input_key = "features"
    term = "triplet"

    @configurable
    def __init__(
        self, *, margin: float = 0.3, norm_feat: bool = False, hard_mining: bool = True, scale: float = 1.0
    ) -> None:
        super().__init__(scale)
        self.margin = margin
        self.norm_feat = norm_feat
        self.hard_mining = hard_mining

    @classmethod
    def from_config(cls, cfg) -> Dict:
        tri = cfg.MODEL.LOSSES.TRI
        return {"margin": tri.MARGIN, "norm_feat": tri.NORM_FEAT, "hard_mining": tri.HARD_MINING, "scale": tri.SCALE}

    def compute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return triplet_loss(inputs, targets, self.margin, self.norm_feat, self.hard_mining)


class _PairwiseLoss(ReIDLoss):
    input_key = "features"
    cfg_group = ""

    @configurable
    def __init__(self, *, margin: float = 0.25, gamma: float = 128.0, scale: float = 1.0) -> None:
        super().__init__(scale)
        self.margin = margin
        self.gamma = gamma

    @classmethod
    def from_config(cls, cfg) -> Dict:
        group = cfg.MODEL.LOSSES[cls.cfg_group]
        return {"margin": group.MARGIN, "gamma": group.GAMMA, "scale": group.SCALE}


@LOSS_REGISTRY.register()
class CircleLoss(_PairwiseLoss):
    """Pairwise circle loss (MODEL.LOSSES.CIRCLE) on the head's "features": term ``loss_circle``."""

    term = "circle"
    cfg_group = "CIRCLE"

    def compute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return pairwise_circle_loss(inputs, targets, self.margin, self.gamma)


@LOSS_REGISTRY.register()
class CosFaceLoss(_PairwiseLoss):
    """Pairwise CosFace loss (MODEL.LOSSES.COSFACE) on the head's "features": term ``loss_cosface``."""

    term = "cosface"
    cfg_group = "COSFACE"

    def compute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return pairwise_cosface_loss(inputs, targets, self.margin, self.gamma)
