"""Image reading and per-sample seeding of the global random generators."""
import contextlib
import logging
import random
from typing import Iterator

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

