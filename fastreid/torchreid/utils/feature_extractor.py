"""torchreid's ``FeatureExtractor`` on :class:`fastreid.predictor.FeatureExtractor` (batching, image reading).

Images are resized with fastreid's test transform (``INPUT.SIZE_TEST`` = ``image_size``), the one
:class:`fastreid.torchreid.data.ImageDataManager` evaluates with, so the features equal the engine's. fastreid's
predictor feeds 0-255 images; torchreid's models (and :class:`fastreid.torchreid.models.TorchreidModel` on a
bare tensor) take them on the 0-1 scale normalised with ``pixel_mean`` / ``pixel_std``, which
:class:`TorchreidInput` applies in between. A tensor given to the extractor is, as in torchreid, already
preprocessed and reaches the model unchanged.
"""
import logging
from typing import List, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from fastreid.config import get_cfg
from fastreid.data.transforms import build_transforms
from fastreid.predictor import FeatureExtractor as PredictorExtractor
from fastreid.torchreid.data import normalize_images
from fastreid.torchreid.data.datamanager import IMAGENET_MEAN, IMAGENET_STD
from fastreid.torchreid.models import build_model
from fastreid.utils.precision import precision_for

from .model_complexity import compute_model_complexity
from .torchtools import load_pretrained_weights

__all__ = ["FeatureExtractor", "TorchreidInput"]

logger = logging.getLogger(__name__)

Inputs = Union[str, np.ndarray, Sequence[Union[str, np.ndarray]], torch.Tensor]


class TorchreidInput(nn.Module):
    """``model`` fed with 0-255 images: scales them to 0-1 and, with ``pixel_norm``, normalises them.

    Args:
        model: a torchreid-style model taking preprocessed B×3×H×W images.
        pixel_mean, pixel_std: per-channel statistics on the 0-1 scale.
        pixel_norm: apply them (torchreid's ``Normalize``); False leaves the images on the 0-1 scale.
    """

    def __init__(self, model: nn.Module, pixel_mean: Sequence[float], pixel_std: Sequence[float],
                 pixel_norm: bool = True) -> None:
        super().__init__()
        self.model = model
        self.pixel_mean, self.pixel_std = list(pixel_mean), list(pixel_std)
        self.pixel_norm = pixel_norm
        # The wrapper's mode is the model's: switching the wrapper back after inference must not switch an
        # eval-mode model to training.
        self.train(model.training)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float 0-255 images -> the model's output on their preprocessed form."""
        if self.pixel_norm:
            return self.model(normalize_images(images, self.pixel_mean, self.pixel_std))
        return self.model(images / 255.0)


def _device(device: str) -> torch.device:
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        logger.warning("FeatureExtractor: device '%s' asked for but no GPU is available; using the CPU", device)
        return torch.device("cpu")
    return torch.device(device)


class FeatureExtractor:
    """torchreid's feature extraction API: ``extractor(images)`` -> (N, D) features.

    Args:
        model_name: a torchreid model name (:func:`fastreid.torchreid.models.show_avai_models`).
        model_path: weights loaded with :func:`load_pretrained_weights` (torchreid's or fastreid's files);
            '' keeps ImageNet weights (``pretrained``, from the local cache only) or the random initialisation.
        image_size: (height, width) the images are resized to.
        pixel_mean, pixel_std: normalisation statistics on the 0-1 scale.
        pixel_norm: normalise the images (False: 0-1 scale only).
        device: 'cpu', 'cuda' or 'cuda:N'; a CUDA device without a GPU falls back to the CPU with a warning.
        verbose: log the model's parameter and FLOP counts.
        precision: the forward pass's precision, as MODEL.PRECISION (fastreid's argument): "fp32" (default,
            torchreid's features), "auto" (bfloat16 autocast on CPUs with native bf16 where a quick check finds
            it faster, else float32), "bf16" or "fp16". Features are float32 either way.

    Attributes:
        model: the eval-mode model on ``device``.
        device: the device used.
        precision: the autocast dtype ``precision`` resolved to (None: float32).
    """

    def __init__(
        self,
        model_name: str = "",
        model_path: str = "",
        image_size: Tuple[int, int] = (256, 128),
        pixel_mean: Sequence[float] = tuple(IMAGENET_MEAN),
        pixel_std: Sequence[float] = tuple(IMAGENET_STD),
        pixel_norm: bool = True,
        device: str = "cuda",
        verbose: bool = True,
        precision: str = "fp32",
    ) -> None:
        self.device = _device(device)
        self.precision = precision_for(precision, self.device)
        model = build_model(model_name, num_classes=1, pretrained=not model_path,
                            use_gpu=self.device.type == "cuda")
        if model_path:
            load_pretrained_weights(model, model_path)
        self.model = model.to(self.device).eval()
        height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
        if verbose:
            num_params, flops = compute_model_complexity(self.model, (1, 3, height, width))
            logger.info("Model: %s; params: %s; flops: %s", model_name, f"{num_params:,}", f"{flops:,}")
        cfg = get_cfg()
        cfg.INPUT.SIZE_TEST = [int(height), int(width)]
        transform = build_transforms(cfg, is_train=False)
        batch_size = cfg.TEST.IMS_PER_BATCH
        self._from_pixels = PredictorExtractor(TorchreidInput(self.model, pixel_mean, pixel_std, pixel_norm),
                                               transform, batch_size=batch_size, precision=self.precision)
        self._preprocessed = PredictorExtractor(self.model, transform, batch_size=batch_size,
                                                precision=self.precision)

    def __call__(self, inputs: Inputs) -> torch.Tensor:
        """Features of ``inputs``.

        Args:
            inputs: an image path or H×W×3 uint8 RGB array, a list of them, or a float (B, 3, H, W) /
                (3, H, W) tensor already preprocessed (resized and normalised), as torchreid takes them.

        Returns:
            (N, D) float32 features on ``device``, in input order.

        Raises:
            TypeError: for another input type.
        """
        if isinstance(inputs, torch.Tensor):
            return self._preprocessed(inputs).to(self.device)
        items: List = [inputs] if isinstance(inputs, (str, np.ndarray)) else list(inputs)
        for item in items:
            if not isinstance(item, (str, np.ndarray)):
                raise TypeError(f"FeatureExtractor takes image paths and H×W×3 uint8 numpy arrays (or a list of "
                                f"them), or a preprocessed tensor; got a {type(item).__name__}")
        return self._from_pixels(items).to(self.device)
