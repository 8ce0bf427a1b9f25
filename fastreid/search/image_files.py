"""Collecting image files from folders and file lists."""
import os
from typing import List, Sequence

__all__ = ["IMAGE_EXTENSIONS", "list_images"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def list_images(inputs: Sequence[str]) -> List[str]:
    """Absolute paths of the images named by ``inputs``, in a stable order.

    Args:
        inputs: image files (kept in the given order) and folders (searched recursively; their images
            sorted by path). Files of a folder without an image extension are ignored.

    Raises:
        FileNotFoundError: for an input that does not exist, or when no image is found.
    """
    paths: List[str] = []
    for item in inputs:
        if os.path.isdir(item):
            found = [os.path.join(root, name) for root, _, names in os.walk(item) for name in names
                     if name.lower().endswith(IMAGE_EXTENSIONS)]
            paths += sorted(os.path.abspath(p) for p in found)
        elif os.path.isfile(item):
            paths.append(os.path.abspath(item))
        else:
            raise FileNotFoundError(f"No such image file or folder: {item}")
    if not paths:
        raise FileNotFoundError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) found in {list(inputs)}")
    return paths
