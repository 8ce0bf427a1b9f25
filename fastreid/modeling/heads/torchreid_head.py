"""torchreid's ResNet models in fastreid: the backbone is fastreid's ResNet with torchvision's stem
(MODEL.BACKBONE.STEM_POOL "padded"), the head is :class:`TorchreidHead` (``configs/torchreid/``).

torchreid's ``resnet50`` is torchvision's ResNet-50 with last stride 2, global average pooling and a Linear
classifier with bias; its eval-mode features are the pooled 2048-d vector. ``resnet50_fc512`` has last stride 1
and an fc layer (Linear 2048→512, BatchNorm1d, ReLU) after the pooling; its features are that layer's 512-d
output. The module names here (``fc``, ``classifier``) are torchreid's, so its weights map by prefix
(:mod:`fastreid.modeling.layouts.torchreid`).
"""
import warnings
from typing import Dict, Optional, Sequence, Union

import torch
from torch import nn

from fastreid.config import configurable
from fastreid.layers import build_pooling

from .build import REID_HEADS_REGISTRY

__all__ = ["TorchreidHead"]


@REID_HEADS_REGISTRY.register()
class TorchreidHead(nn.Module):
    """torchreid's ResNet head: pooling, optional fc layers (Linear, BatchNorm1d, ReLU), Linear classifier.

    Args:
        feat_dim: channels C of the input map (the backbone's ``out_channels``).
        num_classes: identities in the training set (0 only for models used in eval mode).
        fc_dims: widths of the fc layers after the pooling (torchreid's ``fc_dims``); empty for none.
        pool_type: name in ``POOLING_REGISTRY`` (torchreid pools by global average).
        dropout: dropout probability after each fc layer (torchreid's ``dropout_p``); 0 for none.

    Attributes:
        embedding_dim (int): width D of the features, ``fc_dims[-1]`` or C.
    """

    @configurable
    def __init__(
        self,
        *,
        feat_dim: int,
        num_classes: int,
        fc_dims: Sequence[int] = (),
        pool_type: str = "GlobalAvgPool",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.pool_layer = build_pooling(pool_type)
        layers = []
        for dim in fc_dims:
            layers += [nn.Linear(feat_dim, dim), nn.BatchNorm1d(dim), nn.ReLU(inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            feat_dim = dim
        # Absent (not an empty Sequential) without fc layers, as in torchreid.
        self.fc: Optional[nn.Sequential] = nn.Sequential(*layers) if layers else None
        self.embedding_dim = feat_dim
        with warnings.catch_warnings():
            # num_classes 0 (inference configs) gives an empty weight, whose default init only warns.
            warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
            self.classifier = nn.Linear(feat_dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # torchreid's initialisation of these layers, so training from scratch starts where torchreid's does.
        for m in self.modules():
            if isinstance(m, nn.Linear) and m.weight.numel():
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm1d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @classmethod
    def from_config(cls, cfg, in_channels: int) -> Dict:
        heads = cfg.MODEL.HEADS
        return {
            "feat_dim": in_channels,
            "num_classes": heads.NUM_CLASSES,
            "fc_dims": (heads.EMBEDDING_DIM,) if heads.EMBEDDING_DIM > 0 else (),
            "pool_type": heads.POOL_LAYER,
        }

    def forward(
        self, features: torch.Tensor, targets: Optional[torch.Tensor] = None
    ) -> Union[torch.Tensor, Dict[str, torch.Tensor]]:
        """
        Args:
            features: B×C×h×w backbone map.
            targets: unused (the classifier has no margin).

        Returns:
            Eval mode: the B×D features (pooled, then through the fc layers). Training mode: a dict with
            "cls_outputs" and "pred_class_logits" (both the B×K logits) and "features" (the B×D features).
        """
        v = self.pool_layer(features).flatten(1)
        if self.fc is not None:
            v = self.fc(v)
        if not self.training:
            return v
        logits = self.classifier(v)
        return {"cls_outputs": logits, "pred_class_logits": logits, "features": v}
