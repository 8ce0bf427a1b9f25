"""The inference graph that deployment formats capture, and the model it wraps built from a config."""
from typing import Optional, Sequence

import torch
from torch import nn

from fastreid.config import CfgNode
from fastreid.predictor import load_inference_config, load_model

__all__ = ["FeatureExtractor", "build_export_model", "export_cfg", "model_device"]


class FeatureExtractor(nn.Module):
    """A reid model as a plain function from images to features, always in eval mode.

    The normalisation by MODEL.PIXEL_MEAN / PIXEL_STD is part of the meta-architecture, so an exported graph
    takes raw 0-255 images.

    Args:
        model: a module mapping B×3×H×W float 0-255 images to B×D features in eval mode (any registered
            meta-architecture).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.eval()

    def train(self, mode: bool = True) -> "FeatureExtractor":
        # The exported graph is the inference graph: BatchNorm must use its running statistics.
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """
        Args:
            images: N×3×H×W images on the 0-255 scale (any real or integer dtype; cast to float32).

        Returns:
            N×D features.
        """
        features = self.model(images.float())
        if not isinstance(features, torch.Tensor) or features.dim() != 2:
            raise TypeError(
                f"{type(self.model).__name__} must return N×D features in eval mode, got "
                f"{type(features).__name__}{tuple(features.shape) if isinstance(features, torch.Tensor) else ''}"
            )
        return features


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a module without tensors)."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def export_cfg(config_file: str = "", opts: Optional[Sequence[str]] = None, device: str = "cpu") -> CfgNode:
    """The config of a model to export: :func:`fastreid.predictor.load_inference_config` built on ``device``."""
    return load_inference_config(config_file, opts=list(opts or []) + ["MODEL.DEVICE", device])


def build_export_model(cfg: CfgNode) -> FeatureExtractor:
    """The model of ``cfg`` with MODEL.WEIGHTS loaded (see :func:`fastreid.predictor.load_model`), wrapped for
    export."""
    return FeatureExtractor(load_model(cfg))
