"""``AttrBaseline``: fastreid's Baseline trained on attribute vectors instead of identity labels."""
from typing import Dict, Mapping, Sequence, Union

import torch

from fastreid.modeling import META_ARCH_REGISTRY
from fastreid.modeling.meta_arch import Baseline

__all__ = ["AttrBaseline"]


@META_ARCH_REGISTRY.register()
class AttrBaseline(Baseline):
    """Backbone → :class:`~fast_attr.head.AttrHead` → the configured losses, with B×A float attribute targets.

    Eval mode returns the head's B×A attribute probabilities.
    """

    def targets_of(self, batched_inputs) -> torch.Tensor:
        """The B×A float attribute labels of a training batch, on the model's device."""
        if not isinstance(batched_inputs, Mapping) or "targets" not in batched_inputs:
            raise ValueError('Training mode needs a dict batch with "images" and "targets"')
        return batched_inputs["targets"].to(self.device, non_blocking=True).float()

    def forward(self, batched_inputs) -> Union[Dict[str, torch.Tensor], torch.Tensor]:
        """
        Args:
            batched_inputs: {"images": B×3×H×W float 0-255, "targets": B×A attribute labels (training only)}, or in
                eval mode just the image tensor.

        Returns:
            Training mode: {"loss_<term>": scalar} of the configured losses. Eval mode: B×A probabilities.
        """
        features = self.backbone_features(batched_inputs)
        if not self.training:
            return self.heads(features)
        self.check_num_classes(getattr(self.heads, "num_classes", 1))
        return self.loss_terms(self.heads(features), self.targets_of(batched_inputs))

    def set_positive_ratios(self, ratios: Union[torch.Tensor, Sequence[float]]) -> None:
        """Give the (A,) training-set share of positives of each attribute to every loss that weights by it."""
        for loss in self.losses:
            if hasattr(loss, "set_positive_ratios"):
                loss.set_positive_ratios(ratios)
