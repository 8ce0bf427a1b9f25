"""A backbone and a loss. CHANGE: replace them with your network and your loss, or delete what you do not need."""
from typing import Dict

import torch
from torch import nn

from fastreid.config import configurable
from fastreid.layers import get_norm
from fastreid.modeling import BACKBONE_REGISTRY, LOSS_REGISTRY
from fastreid.modeling.losses import ReIDLoss

__all__ = ["FeatureNormLoss", "build_template_backbone"]


@BACKBONE_REGISTRY.register()  # name the builder in MODEL.BACKBONE.NAME
def build_template_backbone(cfg) -> nn.Module:
    """Three stride-2 conv blocks ending in MODEL.BACKBONE.FEAT_DIM channels.

    A backbone maps B×3×H×W normalised images to a B×C×h×w map and says C in ``out_channels`` (the head reads
    it). Read the common MODEL.BACKBONE keys (FEAT_DIM, NORM, LAST_STRIDE, PRETRAIN...) where they apply.
    """
    channels = cfg.MODEL.BACKBONE.FEAT_DIM
    widths = (3, channels // 4, channels // 2, channels)
    blocks = []
    for c_in, c_out in zip(widths[:-1], widths[1:]):
        blocks += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                   get_norm(cfg.MODEL.BACKBONE.NORM, c_out), nn.ReLU(inplace=True)]
    net = nn.Sequential(*blocks)
    net.out_channels = channels
    return net


@LOSS_REGISTRY.register()  # list the class name in MODEL.LOSSES.NAME
class FeatureNormLoss(ReIDLoss):
    """``mean(‖f‖²) / 2`` of the batch features: a small penalty keeping them from growing; term
    ``loss_feature_norm``.

    ``input_key`` is the head output the loss reads ("features", or "cls_outputs" for logits); ``compute``
    returns the unweighted value and the base class multiplies it by ``scale``.

    Args:
        scale: weight of the term (MODEL.LOSSES.FEATURE_NORM.SCALE).
    """

    input_key = "features"
    term = "feature_norm"

    @configurable  # lets FeatureNormLoss(cfg) and FeatureNormLoss(scale=...) both work
    def __init__(self, *, scale: float = 0.001) -> None:
        super().__init__(scale)

    @classmethod
    def from_config(cls, cfg) -> Dict:
        return {"scale": cfg.MODEL.LOSSES.FEATURE_NORM.SCALE}

    def compute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """
        Args:
            inputs: B×D features.
            targets: B labels (unused here).
        """
        return 0.5 * inputs.pow(2).sum(dim=1).mean()
