"""``AttrHead``: one logit per attribute on top of fastreid's embedding head."""
from typing import Dict, Optional, Union

import torch
from torch import nn

from fastreid.modeling import REID_HEADS_REGISTRY
from fastreid.modeling.heads import EmbeddingHead

__all__ = ["AttrHead"]


@REID_HEADS_REGISTRY.register()
class AttrHead(EmbeddingHead):
    """:class:`fastreid.modeling.heads.EmbeddingHead` (pooling, BNNeck, classifier) whose K = MODEL.HEADS.NUM_CLASSES
    classifier outputs are attribute logits, batch-normalised as in fast-reid's AttrHead.

    Takes the arguments of EmbeddingHead (from the config: ``AttrHead(cfg, in_channels)``).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.logit_norm = nn.BatchNorm1d(self.num_classes)

    def forward(self, features: torch.Tensor,
                targets: Optional[torch.Tensor] = None) -> Union[torch.Tensor, Dict[str, torch.Tensor]]:
        """
        Args:
            features: B×C×h×w backbone map.
            targets: unused (the attribute labels go to the loss only).

        Returns:
            Eval mode: B×A attribute probabilities (sigmoid of the logits). Training mode: "cls_outputs" and
            "pred_class_logits", both the B×A logits, and "features", the B×D post-neck embedding.
        """
        neck_feat = self.bottleneck(self.pool_layer(features))[..., 0, 0]
        logits = self.logit_norm(self.classifier(neck_feat)[1])
        if not self.training:
            return torch.sigmoid(logits)
        return {"cls_outputs": logits, "pred_class_logits": logits, "features": neck_feat}
