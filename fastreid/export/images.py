"""Reading image files into the input batch of an exported model, as the test loader prepares them."""
from typing import Sequence, Tuple

import numpy as np
import torch
from torchvision import transforms as T

from fastreid.data.data_utils import read_image
from fastreid.data.transforms import ToTensor255

__all__ = ["load_images"]


def load_images(paths: Sequence[str], input_size: Tuple[int, int]) -> np.ndarray:
    """Read RGB images and resize them (bicubic) to ``input_size`` = (H, W), as ``build_transforms`` does at test.

    Returns:
        N×3×H×W float32 array on the 0-255 scale.

    Raises:
        fastreid.data.data_utils.BadImageError: naming an unreadable file.
    """
    transform = T.Compose([T.Resize(tuple(input_size), interpolation=T.InterpolationMode.BICUBIC), ToTensor255()])
    return torch.stack([transform(read_image(p)) for p in paths]).numpy().astype(np.float32, copy=False)
