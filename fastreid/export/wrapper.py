"""The inference graph that deployment formats capture, and the model it wraps built from a config."""
import logging
from typing import Optional, Sequence

import torch
from torch import nn

from fastreid.config import CfgNode, get_cfg
from fastreid.modeling import build_model
from fastreid.utils.checkpoint import Checkpointer

__all__ = ["FeatureExtractor", "build_export_model", "export_cfg", "model_device"]

logger = logging.getLogger(__name__)


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
    """The config of a model to export: defaults, ``config_file``, then ``KEY VALUE`` ``opts``; frozen.

    ImageNet initialisation is switched off (the weights come from MODEL.WEIGHTS, and nothing is downloaded)
    and the model is built on ``device``.
    """
    cfg = get_cfg()
    if config_file:
        cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts or []))
    cfg.MODEL.BACKBONE.PRETRAIN = False
    cfg.MODEL.DEVICE = device
    cfg.freeze()
    return cfg


def build_export_model(cfg: CfgNode) -> FeatureExtractor:
    """Build the model of ``cfg``, load MODEL.WEIGHTS (if set) and wrap it for export.

    Without MODEL.WEIGHTS the model keeps its random initialisation; a warning says so.
    """
    model = build_model(cfg)
    if cfg.MODEL.WEIGHTS:
        Checkpointer(model, save_rng=False).load(cfg.MODEL.WEIGHTS, checkpointables=[])
    else:
        logger.warning("MODEL.WEIGHTS is empty: exporting a randomly initialised model")
    return FeatureExtractor(model)
