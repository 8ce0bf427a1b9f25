"""The transform-step registry and ``build_transforms``, which chains the steps the config lists."""
from typing import Callable, List

import torchvision.transforms as T

from fastreid.config import CfgNode
from fastreid.utils.registry import Registry

__all__ = ["TRANSFORM_REGISTRY", "build_transforms"]

TRANSFORM_REGISTRY = Registry("TRANSFORM")
TRANSFORM_REGISTRY.__doc__ = """Steps of the image transform pipeline, by builder function name.

An entry is ``builder(cfg, is_train) -> list`` of callables (torchvision transforms or any callable mapping an
image to an image), empty when the step's INPUT keys disable it. INPUT.TRAIN_TRANSFORMS and
INPUT.TEST_TRANSFORMS list the steps in the order they run. Steps before ``to_tensor`` receive a PIL RGB image,
steps after it a float ``3 x H x W`` tensor on the 0-255 scale.
"""


def build_transforms(cfg: CfgNode, is_train: bool = True) -> T.Compose:
    """The image transform: PIL RGB image -> float ``3 x H x W`` tensor on the 0-255 scale.

    Chains the steps named by INPUT.TRAIN_TRANSFORMS (``is_train``) or INPUT.TEST_TRANSFORMS, each built by
    its :data:`TRANSFORM_REGISTRY` entry. Default train order (each step only when its keys enable it):
    AutoAugment (AUTOAUG_PROB), resize to SIZE_TRAIN, random resized crop (CROP), pad + random crop (DO_PAD),
    flip (FLIP_PROB), colour jitter (CJ.PROB), random affine, AugMix (AUGMIX_PROB), to tensor, random erasing
    (REA, fill on the 0-255 scale), random patch (RPT). Default test order: resize to SIZE_TEST, centre crop
    (CROP.ENABLED), to tensor. Sizes are (height, width).

    Raises:
        KeyError: for a step name not in TRANSFORM_REGISTRY, listing the registered names.
        TypeError: when a step builder returns something other than a list of callables.
    """
    key = "TRAIN_TRANSFORMS" if is_train else "TEST_TRANSFORMS"
    transforms: List[Callable] = []
    for name in cfg.INPUT[key]:
        try:
            builder = TRANSFORM_REGISTRY.get(name)
        except KeyError as e:
            raise KeyError(f"INPUT.{key} names an unknown step. {e.args[0]}") from None
        built = builder(cfg, is_train)
        if not isinstance(built, (list, tuple)) or not all(callable(t) for t in built):
            raise TypeError(f"Transform step '{name}' must return a list of callables, got {built!r}")
        transforms.extend(built)
    return T.Compose(transforms)
