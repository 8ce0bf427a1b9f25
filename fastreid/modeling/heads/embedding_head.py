"""``EmbeddingHead``: pooling, optional reduction, BNNeck and a (margin) classifier; ``ClasHead``."""
from typing import Dict, Optional, Union

import torch
from torch import nn

from fastreid.config import configurable
from fastreid.layers import build_classifier, build_pooling, get_norm

from .build import REID_HEADS_REGISTRY

__all__ = ["ClasHead", "EmbeddingHead"]


@REID_HEADS_REGISTRY.register()
class EmbeddingHead(nn.Module):
    """Turns a feature map into an embedding and, in training, class logits (Luo et al. 2019, "bag of tricks").

    pool → optional 1×1 conv to ``embedding_dim`` → BNNeck (bias frozen at 0) → classifier.

    Args:
        feat_dim: channels C of the input map (the backbone's ``out_channels``).
        embedding_dim: width of the 1×1 reduction; 0 keeps C.
        num_classes: identities in the training set (0 only for models used in eval mode).
        neck_feat: feature given to metric losses: "before" (the pooled feature) or "after" (post-neck).
        pool_type: name in ``POOLING_REGISTRY``.
        cls_type: name in ``CLASSIFIER_REGISTRY``.
        scale, margin: of the margin classifiers.
        with_bnneck: add the BNNeck.
        norm_type: norm name of the BNNeck.
    """

    @configurable
    def __init__(
        self,
        *,
        feat_dim: int,
        embedding_dim: int = 0,
        num_classes: int,
        neck_feat: str = "before",
        pool_type: str = "GlobalAvgPool",
        cls_type: str = "Linear",
        scale: float = 1.0,
        margin: float = 0.0,
        with_bnneck: bool = True,
        norm_type: str = "BN",
    ) -> None:
        super().__init__()
        if neck_feat not in ("before", "after"):
            raise ValueError(f"MODEL.HEADS.NECK_FEAT must be 'before' or 'after', got '{neck_feat}'")
        self.neck_feat = neck_feat
        self.num_classes = num_classes
        self.pool_layer = build_pooling(pool_type)
        neck = []
        if embedding_dim > 0:
            conv = nn.Conv2d(feat_dim, embedding_dim, 1, 1, bias=False)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out")
            neck.append(conv)
            feat_dim = embedding_dim
        if with_bnneck:
            neck.append(get_norm(norm_type, feat_dim, bias_freeze=True))
        self.bottleneck = nn.Sequential(*neck)
        self.embedding_dim = feat_dim
        self.classifier = build_classifier(cls_type, feat_dim, num_classes, scale=scale, margin=margin)

    @classmethod
    def from_config(cls, cfg, in_channels: int) -> Dict:
        heads = cfg.MODEL.HEADS
        return {
            "feat_dim": in_channels,
            "embedding_dim": heads.EMBEDDING_DIM,
            "num_classes": heads.NUM_CLASSES,
            "neck_feat": heads.NECK_FEAT,
            "pool_type": heads.POOL_LAYER,
            "cls_type": heads.CLS_LAYER,
            "scale": heads.SCALE,
            "margin": heads.MARGIN,
            "with_bnneck": heads.WITH_BNNECK,
            "norm_type": heads.NORM,
        }

    def forward(
        self, features: torch.Tensor, targets: Optional[torch.Tensor] = None
    ) -> Union[torch.Tensor, Dict[str, torch.Tensor]]:
        """
        Args:
            features: B×C×h×w backbone map.
            targets: B identity labels (long), used by margin classifiers in training.

        Returns:
            Eval mode: the post-neck embedding B×D. Training mode: a dict with "cls_outputs" B×K (logits with
            the margin applied, for the classification loss), "pred_class_logits" B×K (scaled logits without
            margin, for accuracy) and "features" (B×C pooled or B×D post-neck, per ``neck_feat``, for metric
            losses).
        """
        pool_feat = self.pool_layer(features)
        neck_feat = self.bottleneck(pool_feat)[..., 0, 0]
        if not self.training:
            return neck_feat
        cls_outputs, pred_class_logits = self.classifier(neck_feat, targets)
        return {
            "cls_outputs": cls_outputs,
            "pred_class_logits": pred_class_logits,
            "features": pool_feat[..., 0, 0] if self.neck_feat == "before" else neck_feat,
        }


@REID_HEADS_REGISTRY.register()
class ClasHead(EmbeddingHead):
    """A plain classification head: as :class:`EmbeddingHead` in training; in eval mode it returns the class
    logits B×K instead of the embedding."""

    def forward(
        self, features: torch.Tensor, targets: Optional[torch.Tensor] = None
    ) -> Union[torch.Tensor, Dict[str, torch.Tensor]]:
        if self.training:
            return super().forward(features, targets)
        neck_feat = self.bottleneck(self.pool_layer(features))[..., 0, 0]
        return self.classifier(neck_feat)[1]
