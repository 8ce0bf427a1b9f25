"""Image reading, per-sample seeding of the global random generators and a small device prefetcher."""
import contextlib
import logging
import random
from typing import Any, Dict, Iterable, Iterator

import numpy as np
import torch
from PIL import Image
from torch.utils.data import get_worker_info

logger = logging.getLogger(__name__)


class BadImageError(OSError):
    """An image file that cannot be read or decoded (missing, truncated, not an image)."""


def read_image(path: str) -> Image.Image:
    """Read an image file as an RGB PIL image.

    Raises:
        BadImageError: naming the file when it is missing, unreadable or truncated.
    """
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except (OSError, ValueError, SyntaxError) as e:
        raise BadImageError(f"Cannot read image {path}: {e}") from e


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Restore the states of torch's CPU generator, Python's ``random`` and numpy's legacy global RNG on exit.

    In a loader worker the global generators serve only the dataset, which re-seeds them for every sample, so
    nothing is saved there (saving numpy's state alone costs ~0.05 ms).
    """
    if get_worker_info() is not None:
        yield
        return
    states = torch.default_generator.get_state(), random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        torch.default_generator.set_state(states[0])
        random.setstate(states[1])
        np.random.set_state(states[2])


def seed_rng(seed: int) -> None:
    """Seed torch's CPU generator, Python's ``random`` and numpy's legacy global RNG from one 64-bit ``seed``.

    These are the generators image transforms draw from (torchvision uses torch's; custom ones may use
    ``random`` or numpy's), so transforms run afterwards depend on ``seed`` alone.
    """
    seed = int(seed)
    # torch's Mersenne Twister uses only the low 32 bits of a seed, and numpy's legacy one seeded from the same
    # 32 bits produces the same bit stream, so they get different halves.
    torch.default_generator.manual_seed(seed & 0xFFFFFFFF)
    np.random.seed(seed >> 32 & 0xFFFFFFFF)
    random.seed(seed)


class DevicePrefetcher:
    """Iterate a batch loader while copying the next batch to ``device`` ahead of use.

    Meant for CUDA with ``pin_memory=True`` loaders, where ``non_blocking`` copies overlap with compute; on
    CPU it only moves tensors. Tensors in the batch dict are moved, other values are passed through.

    Args:
        loader: an iterable of batch dicts.
        device: target device.
    """

    def __init__(self, loader: Iterable[Dict[str, Any]], device: torch.device) -> None:
        self.loader = loader
        self.device = torch.device(device)

    def _move(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        return {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        it = iter(self.loader)
        try:
            nxt = self._move(next(it))
        except StopIteration:
            return
        for batch in it:
            current, nxt = nxt, self._move(batch)
            yield current
        yield nxt
