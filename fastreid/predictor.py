"""Embeddings from a trained model: images in, N×D features out.

::

    extractor = FeatureExtractor.from_config_file("configs/Synthetic/bagtricks_R18.yml", "model_final.pth")
    feats = extractor(["a.jpg", "b.jpg"])           # (2, D) float32 on the CPU

The extractor reproduces the evaluator's features exactly: images go through the test transform
(``build_transforms(cfg, is_train=False)``: resize to INPUT.SIZE_TEST, 0-255 tensor), the model runs in
eval mode without gradients at MODEL.PRECISION (see :mod:`fastreid.utils.precision`), and with flip
averaging the features of an image and its mirror are averaged as in :func:`fastreid.evaluation.inference_on_dataset`.
L2 normalisation, when asked for, comes last.

This module sits above ``data``, ``modeling`` and ``evaluation`` (it uses all three), next to the tools.
"""
import argparse
import logging
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from fastreid.config import CfgNode, add_config_arguments, load_config
from fastreid.data import read_image
from fastreid.data.transforms import build_transforms
# FeatureCollector is re-exported: the evaluation package owns it.
from fastreid.evaluation import FeatureCollector, forward_features, inference_context
from fastreid.modeling import build_model
from fastreid.utils.checkpoint import load_inference_weights
from fastreid.utils.precision import autocast_for, precision_from_config

__all__ = [
    "FeatureCollector",
    "FeatureExtractor",
    "inference_argument_parser",
    "load_inference_config",
    "load_model",
]

logger = logging.getLogger(__name__)

ImageLike = Union[str, Image.Image, np.ndarray]
Images = Union[Sequence[ImageLike], torch.Tensor]


def load_inference_config(config_file: str = "", weights: str = "", opts: Sequence[Any] = ()) -> CfgNode:
    """Default config, then ``config_file``, then ``opts``, set up for inference; frozen.

    Pretrained backbone weights are never fetched (``MODEL.BACKBONE.PRETRAIN False``): the trained
    weights replace them anyway. ``weights``, when given, becomes ``MODEL.WEIGHTS``. Built on
    :func:`fastreid.config.load_config`.
    """
    cfg = load_config(config_file, opts, freeze=False)
    cfg.MODEL.BACKBONE.PRETRAIN = False
    if weights:
        cfg.MODEL.WEIGHTS = weights
    cfg.freeze()
    return cfg


def inference_argument_parser(description: str) -> argparse.ArgumentParser:
    """A parser with ``--config-file`` and ``KEY VALUE`` config overrides, for tools that use a trained model.

    Overrides may be given as positional arguments anywhere (``--config-file CFG MODEL.WEIGHTS m.pth --num-vis
    5``; parse with ``parse_intermixed_args``) or after fast-reid's ``--opts``: pass
    :func:`fastreid.config.config_overrides` ``(args)`` to :func:`load_inference_config`.
    """
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    return add_config_arguments(parser, intermixed=True)


def load_model(cfg: CfgNode) -> nn.Module:
    """The model of ``cfg`` on MODEL.DEVICE with MODEL.WEIGHTS loaded, in eval mode.

    A training-only classifier in the checkpoint that does not fit the model (an inference config leaves
    MODEL.HEADS.NUM_CLASSES at 0) is left out silently. An empty MODEL.WEIGHTS leaves the weights randomly
    initialised (with a warning).
    """
    model = build_model(cfg)
    if cfg.MODEL.WEIGHTS:
        load_inference_weights(model, cfg.MODEL.WEIGHTS, partial=cfg.MODEL.WEIGHTS_PARTIAL)
    else:
        logger.warning("MODEL.WEIGHTS is empty: the model keeps its randomly initialised weights")
    return model.eval()


def _to_pil(image: ImageLike) -> Image.Image:
    if isinstance(image, str):
        return read_image(image)
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"Expected an H×W×3 uint8 RGB array, got shape {image.shape} and dtype {image.dtype}")
        return Image.fromarray(image)
    raise TypeError(f"Cannot read an image from {type(image).__name__}; pass a path, PIL image or uint8 array")


class FeatureExtractor:
    """Batched feature extraction with a re-id model in eval mode.

    Args:
        model: maps a B×3×H×W float 0-255 tensor to B×D features in eval mode (fastreid meta-archs do).
        transform: PIL RGB image → 3×H×W float 0-255 tensor (the test transform).
        batch_size: images per forward pass.
        flip: average each image's features with those of its horizontal mirror.
        normalize: L2-normalise the returned features.
        precision: autocast dtype of the forward pass (``torch.bfloat16``, ``torch.float16``), None for float32;
            the features are float32 either way. :meth:`from_config` takes it from MODEL.PRECISION.
    """

    def __init__(self, model: nn.Module, transform: Callable[[Image.Image], torch.Tensor], *, batch_size: int = 64,
                 flip: bool = False, normalize: bool = False, precision: Optional[torch.dtype] = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.transform = transform
        self.batch_size = batch_size
        self.flip = flip
        self.normalize = normalize
        self.precision = precision

    @classmethod
    def from_config(cls, cfg: CfgNode, model: Optional[nn.Module] = None, **kwargs: Any) -> "FeatureExtractor":
        """Uses :func:`load_model` ``(cfg)`` unless ``model`` is given.

        ``batch_size`` defaults to TEST.IMS_PER_BATCH, ``flip`` to TEST.FLIP_ENABLED and ``precision`` to
        MODEL.PRECISION resolved for MODEL.DEVICE (:func:`fastreid.utils.precision.precision_from_config`);
        ``kwargs`` override.
        """
        if model is None:
            model = load_model(cfg)
        options = {"batch_size": cfg.TEST.IMS_PER_BATCH, "flip": cfg.TEST.FLIP_ENABLED, **kwargs}
        if "precision" not in options:
            options["precision"] = precision_from_config(cfg)
        return cls(model, build_transforms(cfg, is_train=False), **options)

    @classmethod
    def from_config_file(cls, config_file: str, weights: str = "", opts: Sequence[Any] = (),
                         **kwargs: Any) -> "FeatureExtractor":
        """As :meth:`from_config` on :func:`load_inference_config` ``(config_file, weights, opts)``."""
        return cls.from_config(load_inference_config(config_file, weights, opts), **kwargs)

    @property
    def device(self) -> torch.device:
        tensor = next(self.model.parameters(), None)
        if tensor is None:
            tensor = next(self.model.buffers(), torch.empty(0))
        return tensor.device

    def _batches(self, images: Images) -> Iterator[torch.Tensor]:
        if isinstance(images, torch.Tensor):
            if images.dim() == 3:
                images = images.unsqueeze(0)
            if images.dim() != 4 or images.shape[1] != 3:
                raise ValueError(f"Expected a B×3×H×W image tensor, got shape {tuple(images.shape)}")
            yield from images.float().split(self.batch_size)
            return
        if isinstance(images, (str, Image.Image, np.ndarray)):
            images = [images]
        for start in range(0, len(images), self.batch_size):
            yield torch.stack([self.transform(_to_pil(x)) for x in images[start:start + self.batch_size]])

    @torch.no_grad()
    def forward_batch(self, batch: torch.Tensor) -> torch.Tensor:
        """Features of one B×3×H×W float 0-255 batch (already transformed), on the model's device.

        Returns:
            (B, D) float32 features, flip-averaged and normalised as configured.
        """
        device = self.device
        with autocast_for(self.precision, device):
            feats = forward_features(self.model, batch.to(device), flip=self.flip)
        feats = feats.float()
        return F.normalize(feats, dim=1) if self.normalize else feats

    def __call__(self, images: Images) -> torch.Tensor:
        """Features of ``images``.

        Args:
            images: a list of image paths, PIL images or H×W×3 uint8 RGB arrays (each resized by the test
                transform), or a (B, 3, H, W) / (3, H, W) float tensor on the 0-255 scale already at the
                model's input size (used as is).

        Returns:
            (N, D) float32 features on the CPU, in input order.
        """
        with inference_context(self.model):
            feats = [self.forward_batch(b).cpu() for b in self._batches(images)]
        if not feats:
            raise ValueError("No images given")
        return torch.cat(feats)

