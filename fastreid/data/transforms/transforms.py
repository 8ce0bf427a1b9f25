"""Transforms torchvision lacks: 0-255 tensor conversion and random patch."""
import random
from collections import deque

import numpy as np
import torch
from PIL import Image


class ToTensor255:
    """PIL image or ``H x W x C`` uint8 array to a float ``C x H x W`` tensor on the 0-255 scale (not divided).

    The model normalises with MODEL.PIXEL_MEAN / PIXEL_STD, which are on the 0-255 scale.
    """

    def __call__(self, pic) -> torch.Tensor:
        arr = np.asarray(pic, dtype=np.float32)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class RandomPatch:
    """Paste a patch cut from an earlier image onto this one (Zhou et al., OSNet; torchreid's RandomPatch).

    Every call stores a random patch of the input in a pool; once the pool holds ``min_sample_size`` patches,
    with probability ``prob_happen`` a pooled patch (randomly rotated / flipped) is pasted at a random place.
    Works on ``C x H x W`` tensors. Draws from Python's ``random`` (seeded per sample by the train loader), but
    each process (loader worker) keeps its own pool, which a resume restarts empty: with this transform the
    batches depend on DATALOADER.NUM_WORKERS and a resumed run is not bit-exact.

    Args:
        prob_happen: probability of pasting.
        pool_capacity: patches kept (oldest dropped first).
        min_sample_size: pool size needed before pasting starts.
        patch_min_area, patch_max_area: patch area as a fraction of the image area.
        patch_min_ratio: minimal aspect ratio (its inverse is the maximum).
        prob_rotate, prob_flip_leftright: per-paste probability of a 90-degree rotation / horizontal flip.
    """

    def __init__(
        self,
        prob_happen: float = 0.5,
        pool_capacity: int = 50000,
        min_sample_size: int = 100,
        patch_min_area: float = 0.01,
        patch_max_area: float = 0.5,
        patch_min_ratio: float = 0.1,
        prob_rotate: float = 0.5,
        prob_flip_leftright: float = 0.5,
    ) -> None:
        self.prob_happen = prob_happen
        self.patch_pool = deque(maxlen=pool_capacity)
        self.min_sample_size = min_sample_size
        self.patch_min_area, self.patch_max_area = patch_min_area, patch_max_area
        self.patch_min_ratio = patch_min_ratio
        self.prob_rotate, self.prob_flip_leftright = prob_rotate, prob_flip_leftright

    def _patch_size(self, h: int, w: int):
        for _ in range(100):
            area = random.uniform(self.patch_min_area, self.patch_max_area) * h * w
            ratio = random.uniform(self.patch_min_ratio, 1.0 / self.patch_min_ratio)
            ph, pw = int(round((area * ratio) ** 0.5)), int(round((area / ratio) ** 0.5))
            if 0 < ph < h and 0 < pw < w:
                return ph, pw
        return None

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        size = self._patch_size(h, w)
        if size is None:
            return img
        ph, pw = size
        y, x = random.randint(0, h - ph), random.randint(0, w - pw)
        self.patch_pool.append(img[..., y : y + ph, x : x + pw].clone())
        if len(self.patch_pool) < self.min_sample_size or random.random() > self.prob_happen:
            return img
        patch = random.choice(self.patch_pool)
        if random.random() < self.prob_rotate and patch.shape[-1] < h and patch.shape[-2] < w:
            patch = torch.rot90(patch, 1, dims=(-2, -1))
        if random.random() < self.prob_flip_leftright:
            patch = torch.flip(patch, dims=(-1,))
        ph, pw = patch.shape[-2:]
        if ph > h or pw > w:
            return img
        y, x = random.randint(0, h - ph), random.randint(0, w - pw)
        img = img.clone()
        img[..., y : y + ph, x : x + pw] = patch
        return img

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prob_happen={self.prob_happen}, min_sample_size={self.min_sample_size})"
