"""``DSRBaseline``: the bag-of-tricks Baseline, evaluated on its spatial feature maps."""
from typing import Dict, Union

import torch

from fastreid.modeling import META_ARCH_REGISTRY
from fastreid.modeling.meta_arch import Baseline

__all__ = ["DSRBaseline"]


@META_ARCH_REGISTRY.register()
class DSRBaseline(Baseline):
    """Trains exactly as :class:`~fastreid.modeling.meta_arch.Baseline` (global features, its losses); in eval
    mode returns the B×C×h×w backbone maps, which :class:`~partialreid.DSREvaluator` matches location by
    location."""

    def forward(self, batched_inputs) -> Union[Dict[str, torch.Tensor], torch.Tensor]:
        if self.training:
            return super().forward(batched_inputs)
        return self.backbone_features(batched_inputs)
