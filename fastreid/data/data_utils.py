"""Image reading and a small device prefetcher."""
import logging
from typing import Any, Dict, Iterable, Iterator

import torch
from PIL import Image

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
