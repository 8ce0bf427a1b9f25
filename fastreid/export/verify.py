"""Agreement between the features of an exported model and those of the PyTorch model."""
from typing import Callable, Dict, NamedTuple, Sequence, Tuple

import numpy as np
import torch

__all__ = ["Agreement", "check_agreement", "compare_features", "random_images"]


class Agreement(NamedTuple):
    """How closely two N×D feature arrays agree: largest element-wise difference and smallest row cosine."""

    max_abs_diff: float
    min_cosine: float


def compare_features(reference: np.ndarray, candidate: np.ndarray) -> Agreement:
    """Compare N×D ``candidate`` features with N×D ``reference`` features row by row.

    Raises:
        ValueError: when the shapes differ.
    """
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.shape != candidate.shape:
        raise ValueError(f"Feature shapes differ: {reference.shape} vs {candidate.shape}")
    dot = (reference * candidate).sum(axis=1)
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(candidate, axis=1)
    cosine = dot / np.maximum(norms, 1e-12)
    return Agreement(float(np.abs(reference - candidate).max()), float(cosine.min()))


def random_images(batch_size: int, input_size: Tuple[int, int], seed: int = 0) -> torch.Tensor:
    """Reproducible uniform 0-255 float images of shape ``batch_size``×3×H×W on the CPU."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch_size, 3, *input_size, generator=generator) * 255.0


def check_agreement(
    reference: Callable[[torch.Tensor], torch.Tensor],
    candidate: Callable[[np.ndarray], np.ndarray],
    input_size: Tuple[int, int],
    batch_sizes: Sequence[int] = (1, 3),
    seed: int = 0,
) -> Dict[int, Agreement]:
    """Run both models on the same random images for each batch size and compare their features.

    Args:
        reference: the PyTorch model, called with CPU tensors (fastreid meta-architectures move them to
            their device).
        candidate: the exported model as a function of N×3×H×W float32 arrays.
        input_size: (H, W).
        batch_sizes: batch sizes to try (several check a dynamic batch axis).

    Returns:
        {batch size: Agreement}.
    """
    results = {}
    for i, batch_size in enumerate(batch_sizes):
        images = random_images(batch_size, input_size, seed + i)
        with torch.no_grad():
            expected = reference(images).cpu().numpy()
            actual = candidate(images.numpy())
        results[batch_size] = compare_features(expected, actual)
    return results

