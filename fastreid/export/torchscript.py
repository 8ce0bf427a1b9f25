"""Export to TorchScript by tracing the eval-mode model."""
import logging
import os
from typing import Tuple

import torch
from torch import nn

from ..utils.file_io import atomic_write
from .verify import random_images
from .wrapper import FeatureExtractor, model_device

__all__ = ["export_torchscript"]

logger = logging.getLogger(__name__)


def export_torchscript(
    model: nn.Module, path: str, *, input_size: Tuple[int, int], batch_size: int = 1
) -> torch.jit.ScriptModule:
    """Trace the eval-mode ``model`` with ``torch.jit.trace`` and save it with ``torch.jit.save``.

    TorchScript is deprecated in recent torch releases (``torch.jit`` emits FutureWarnings) but still loads in C++
    (libtorch) and Python; prefer the ONNX export for new deployments.

    The traced module maps N×3×H×W images on the 0-255 scale to N×D features; the batch size may differ from
    the traced one, the image size may not (MGN cuts fixed stripes).

    Args:
        model: a reid model (wrapped in :class:`FeatureExtractor` unless it already is one).
        path: the ``.pt`` file to write atomically (its folder is created).
        input_size: (H, W) of the input images.
        batch_size: batch of the example input used for tracing.

    Returns:
        The traced module.
    """
    extractor = model if isinstance(model, FeatureExtractor) else FeatureExtractor(model)
    extractor.eval()
    images = random_images(batch_size, input_size).to(model_device(extractor))
    # Tracing's own check re-traces the model twice; callers compare outputs with check_agreement instead.
    with torch.no_grad():
        traced = torch.jit.trace(extractor, (images,), check_trace=False)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # Written through a Python file object: a failed write (a full disk) raises OSError and keeps any previous
    # file, where torch.jit.save(path) would abort the whole process.
    atomic_write(path, lambda f: torch.jit.save(traced, f))
    logger.info("Traced %s (input N×3×%d×%d) to %s", type(extractor.model).__name__, *input_size, path)
    return traced
