"""Activation maps: where a model looks, from the energy of its last convolutional feature map.

The activation of an image is the channel-wise sum of squares of the backbone's B×C×h×w map (Zagoruyko and
Komodakis's attention transfer, as OSNet and torchreid draw it), bilinearly upsampled to the image size and
min-max normalised per image. :func:`render_panels` draws image | jet heat map | overlay side by side.
"""
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .evaluator import inference_context

__all__ = ["GAP", "activation_maps", "backbone_input", "featuremap_activations", "render_panels"]

GAP = 10  # white pixels between the panels


def backbone_input(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The backbone input for a (B, 3, H, W) 0-255 batch: the model's own preprocessing when it has one (given
    a fastreid batch ``{"images": ...}``, which a ``TorchreidModel`` also normalises), else its pixel statistics."""
    if hasattr(model, "preprocess_image"):
        return model.preprocess_image({"images": images})
    return (images.to(model.pixel_mean.device) - model.pixel_mean) / model.pixel_std


def featuremap_activations(features: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Normalised activation maps of feature maps.

    Args:
        features: (B, C, h, w) feature maps.
        size: (H, W) of the images.

    Returns:
        (B, H, W) maps in [0, 1] on the CPU: sum over channels of the squared features, upsampled
        bilinearly and min-max scaled per image (a constant map, up to rounding, becomes all zeros).
    """
    if features.dim() != 4:
        raise ValueError(f"Expected B×C×h×w feature maps, got shape {tuple(features.shape)}; the model must return "
                         f"its last convolutional feature map")
    maps = features.detach().float().pow(2).sum(1, keepdim=True)
    maps = F.interpolate(maps, size=tuple(size), mode="bilinear", align_corners=False)[:, 0].cpu()
    low = maps.flatten(1).min(1).values[:, None, None]
    high = maps.flatten(1).max(1).values[:, None, None]
    span = high - low
    # Upsampling a constant (e.g. 1×1) map leaves rounding noise, which min-max scaling would blow up to [0, 1].
    constant = span <= 1e-6 * high.abs()
    return torch.where(constant, torch.zeros_like(maps), (maps - low) / span.clamp_min(1e-12))


@torch.no_grad()
def activation_maps(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Normalised activation maps of a fastreid model's backbone (see :func:`featuremap_activations`).

    Args:
        model: has ``backbone`` (B×3×H×W → B×C×h×w) and either ``preprocess_image`` or ``pixel_mean`` /
            ``pixel_std`` buffers; used in eval mode.
        images: (B, 3, H, W) float images on the 0-255 scale.

    Returns:
        (B, H, W) maps in [0, 1] on the CPU.
    """
    with inference_context(model):
        features = model.backbone(backbone_input(model, images))
    return featuremap_activations(features, images.shape[-2:])


def render_panels(image: np.ndarray, activation: np.ndarray, image_weight: float = 0.5) -> Image.Image:
    """Image | jet heat map | ``image_weight`` × image + (1 - ``image_weight``) × heat map, side by side,
    separated by :data:`GAP` white pixels.

    Args:
        image: (H, W, 3) uint8 RGB.
        activation: (H, W) values in [0, 1].
        image_weight: the image's share of the overlay (torchreid draws 0.3).
    """
    from matplotlib import colormaps  # imported on use: importing fastreid.evaluation stays light

    heat = (colormaps["jet"](activation)[..., :3] * 255).round().astype(np.uint8)
    blend = image_weight * image.astype(np.float32) + (1 - image_weight) * heat.astype(np.float32)
    blend = blend.round().clip(0, 255).astype(np.uint8)
    h, w = activation.shape
    canvas = np.full((h, 3 * w + 2 * GAP, 3), 255, dtype=np.uint8)
    for i, panel in enumerate((image, heat, blend)):
        canvas[:, i * (w + GAP):i * (w + GAP) + w] = panel
    return Image.fromarray(canvas)
