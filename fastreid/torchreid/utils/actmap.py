"""torchreid's activation-map visualisation (``tools/visualize_actmap.py``'s ``visactmap``) as a library call.

The maps and panels are :mod:`fastreid.evaluation.actmap`'s; this module only walks torchreid's test loaders
(normalised ``img`` batches) and writes torchreid's files: ``save_dir/actmap_<target>/<image name>.jpg`` for
each query image, image | activation map | overlay (0.3 × image + 0.7 × heat map, as torchreid draws it).
"""
import logging
import os
from typing import Any, Dict, List, Optional, Sequence

import torch
from torch import nn

from fastreid.evaluation import featuremap_activations, inference_context, render_panels
from fastreid.torchreid.data.datamanager import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["visualize_actmap"]

logger = logging.getLogger(__name__)

_IMAGE_WEIGHT = 0.3  # torchreid's overlay: 0.3 image + 0.7 heat map


def _featuremaps(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    try:
        return model(images, return_featuremaps=True)
    except TypeError as e:
        raise TypeError(f"{type(model).__name__}.forward() does not take return_featuremaps ({e}); add the argument "
                        f"and return the last convolutional B×C×h×w feature map when it is True") from e


def _to_uint8(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> Any:
    """A normalised 3×H×W image back to H×W×3 uint8 RGB, as torchreid recovers it (floor of 255 × value)."""
    mean_t = torch.as_tensor(mean, dtype=image.dtype).view(3, 1, 1)
    std_t = torch.as_tensor(std, dtype=image.dtype).view(3, 1, 1)
    pixels = (image * std_t + mean_t).clamp(0, 1)
    return (pixels * 255).floor().to(torch.uint8).permute(1, 2, 0).numpy()


@torch.no_grad()
def visualize_actmap(
    model: nn.Module,
    test_loader: Dict[str, Dict[str, Any]],
    save_dir: str,
    width: int,
    height: int,
    use_gpu: bool = False,
    img_mean: Optional[Sequence[float]] = None,
    img_std: Optional[Sequence[float]] = None,
) -> List[str]:
    """Write the activation maps of every query image of every target (torchreid's ``visactmap``).

    Args:
        model: returns its last convolutional B×C×h×w map for ``model(images, return_featuremaps=True)``
            (a :class:`fastreid.torchreid.models.TorchreidModel` does); run in eval mode.
        test_loader: ``datamanager.test_loader``: ``{target: {"query": loader, ...}}`` of torchreid batches
            (``img`` normalised B×3×H×W, ``impath``).
        save_dir: output folder; maps go to ``save_dir/actmap_<target>/``.
        width, height: the images' size.
        use_gpu: accepted for torchreid's signature; the images go to the model's device.
        img_mean, img_std: the loaders' normalisation (0-1 scale); default ImageNet's (the data manager's).

    Returns:
        The written files, ``3 * width + 20`` by ``height`` pixels each.

    Raises:
        ValueError: if the images are not ``height`` × ``width`` or the model's maps are not 4-D.
    """
    del use_gpu  # the model's device decides
    if img_mean is None or img_std is None:
        img_mean, img_std = IMAGENET_MEAN, IMAGENET_STD
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    written: List[str] = []
    with inference_context(model):
        for target, loaders in test_loader.items():
            folder = os.path.join(save_dir, f"actmap_{target}")
            os.makedirs(folder, exist_ok=True)
            logger.info("Visualizing activation maps for %s ...", target)
            for batch in loaders["query"]:  # query images only, as torchreid
                images = batch["img"]
                if tuple(images.shape[-2:]) != (height, width):
                    raise ValueError(f"visualize_actmap: images are {tuple(images.shape[-2:])} (height, width) but "
                                     f"height={height}, width={width} were given; pass the data manager's size")
                maps = featuremap_activations(_featuremaps(model, images.to(device)), (height, width))
                for image, activation, path in zip(images.cpu(), maps.numpy(), batch["impath"]):
                    name = os.path.splitext(os.path.basename(path))[0] + ".jpg"
                    panels = render_panels(_to_uint8(image, img_mean, img_std), activation, _IMAGE_WEIGHT)
                    panels.save(os.path.join(folder, name))
                    written.append(os.path.join(folder, name))
    logger.info("Wrote %d activation maps to %s", len(written), save_dir)
    return written
