"""``Baseline``: backbone → head → weighted losses, the model of the bag-of-tricks, AGW and SBS recipes."""
from typing import Dict, Mapping, Optional, Sequence, Union

import torch
from torch import nn

from fastreid.config import configurable
from fastreid.modeling.backbones import build_backbone
from fastreid.modeling.heads import build_heads
from fastreid.modeling.losses import build_losses, log_accuracy

from .build import META_ARCH_REGISTRY

__all__ = ["Baseline", "ReIDMetaArch"]

Batch = Union[Mapping[str, torch.Tensor], torch.Tensor]


class ReIDMetaArch(nn.Module):
    """Input normalisation and loss bookkeeping shared by meta-architectures.

    Args:
        losses: the loss modules (see :func:`fastreid.modeling.losses.build_losses`).
        pixel_mean, pixel_std: per-channel statistics on the 0-255 scale.
    """

    def __init__(self, *, losses: Sequence[nn.Module], pixel_mean: Sequence[float], pixel_std: Sequence[float]):
        super().__init__()
        self.losses = nn.ModuleList(losses)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(1, -1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(1, -1, 1, 1), False)
        self.memory_format = torch.contiguous_format

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def use_channels_last(self) -> "ReIDMetaArch":
        """Store weights and feed images in channels-last (NHWC) memory format (MODEL.CHANNELS_LAST), also in
        nested meta-architectures (e.g. a Distiller's EMA teacher)."""
        self.to(memory_format=torch.channels_last)
        for module in self.modules():
            if isinstance(module, ReIDMetaArch):
                module.memory_format = torch.channels_last
        return self

    def preprocess_image(self, batched_inputs: Batch) -> torch.Tensor:
        """Normalised B×3×H×W images on the model's device from ``batched_inputs["images"]`` (0-255 floats)
        or a bare image tensor; the caller's tensors are not modified."""
        images = batched_inputs["images"] if isinstance(batched_inputs, Mapping) else batched_inputs
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"Expected images as a B×3×H×W tensor, got {type(images).__name__}")
        if images.dim() == 5:
            raise ValueError(f"{type(self).__name__} takes B×3×H×W images but got tracklet frames of shape "
                             f"{tuple(images.shape)} (B×S×3×H×W): set MODEL.META_ARCHITECTURE VideoBaseline for "
                             "tracklet (video) datasets")
        images = images.to(self.device, non_blocking=True)
        return ((images - self.pixel_mean) / self.pixel_std).contiguous(memory_format=self.memory_format)

    def targets_of(self, batched_inputs: Batch) -> torch.Tensor:
        """The B long identity labels of a training batch, on the model's device."""
        if not isinstance(batched_inputs, Mapping) or "targets" not in batched_inputs:
            raise ValueError('Training mode needs a dict batch with "images" and "targets"')
        return batched_inputs["targets"].to(self.device, non_blocking=True).long()

    @staticmethod
    def check_num_classes(num_classes: int) -> None:
        if num_classes <= 0:
            raise ValueError(
                "MODEL.HEADS.NUM_CLASSES is 0, so the model has no classifier to train. Set it to the number of "
                "training identities before building the model (DefaultTrainer does this from the training set)."
            )

    def loss_terms(
        self,
        outputs: Dict[str, torch.Tensor],
        targets: torch.Tensor,
        losses: Optional[Sequence[nn.Module]] = None,
        suffix: str = "",
        weight: float = 1.0,
    ) -> Dict[str, torch.Tensor]:
        """Apply ``losses`` (default: all) to one head's training outputs.

        Returns:
            {"loss_<term><suffix>": weight * term}.
        """
        terms = {}
        for loss in self.losses if losses is None else losses:
            for name, value in loss(outputs, targets).items():
                terms[name + suffix] = value * weight if weight != 1.0 else value
        return terms


@META_ARCH_REGISTRY.register()
class Baseline(ReIDMetaArch):
    """A backbone, one head and the configured losses (Luo et al. 2019).

    Args:
        backbone: maps B×3×H×W to B×C×h×w.
        heads: a reid head (see :class:`fastreid.modeling.heads.EmbeddingHead`).
        losses, pixel_mean, pixel_std: see :class:`ReIDMetaArch`.
    """

    @configurable
    def __init__(
        self,
        *,
        backbone: nn.Module,
        heads: nn.Module,
        losses: Sequence[nn.Module],
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
    ) -> None:
        super().__init__(losses=losses, pixel_mean=pixel_mean, pixel_std=pixel_std)
        self.backbone = backbone
        self.heads = heads

    @classmethod
    def from_config(cls, cfg) -> Dict:
        backbone = build_backbone(cfg)
        return {
            "backbone": backbone,
            "heads": build_heads(cfg, backbone.out_channels),
            "losses": build_losses(cfg),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
        }

    def backbone_features(self, batched_inputs: Batch) -> torch.Tensor:
        """The B×C×h×w backbone maps the head takes (subclasses change how they are computed)."""
        return self.backbone(self.preprocess_image(batched_inputs))

    def forward(self, batched_inputs: Batch) -> Union[Dict[str, torch.Tensor], torch.Tensor]:
        """
        Args:
            batched_inputs: {"images": B×3×H×W float 0-255, "targets": B long (training only)}, or in eval
                mode just the image tensor.

        Returns:
            Training mode: {"loss_<term>": scalar} for the configured losses, each weighted by its SCALE.
            Eval mode: B×D features.
        """
        features = self.backbone_features(batched_inputs)
        if not self.training:
            return self.heads(features)
        self.check_num_classes(getattr(self.heads, "num_classes", 1))
        targets = self.targets_of(batched_inputs)
        outputs = self.heads(features, targets)
        log_accuracy(outputs["pred_class_logits"], targets)
        return self.training_losses(batched_inputs, outputs, targets)

    def training_losses(
        self, batched_inputs: Batch, outputs: Dict[str, torch.Tensor], targets: torch.Tensor
    ) -> Dict[str, torch.Tensor]:
        """The loss terms of a training batch from the head's training outputs: the configured losses here;
        subclasses add their own terms (e.g. MoCo's memory loss).

        Args:
            batched_inputs: the batch given to :meth:`forward`.
            outputs: the head's training outputs.
            targets: B identity labels on the model's device.
        """
        return self.loss_terms(outputs, targets)
