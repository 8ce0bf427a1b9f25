"""The built-in steps of the image transform pipeline, registered in ``TRANSFORM_REGISTRY``.

Each builder takes ``(cfg, is_train)`` and returns a list of transforms, empty when its INPUT keys disable it.
Steps that differ between training and test (resize, crop) read ``is_train``; the augmentations do not, so
listing one in INPUT.TEST_TRANSFORMS applies it at test time too.
"""
from typing import Callable, List, Tuple

import torchvision.transforms as T
from torchvision.transforms import InterpolationMode

from fastreid.config import CfgNode

from .build import TRANSFORM_REGISTRY
from .transforms import RandomPatch, ToTensor255

__all__ = [
    "affine",
    "augmix",
    "auto_augment",
    "color_jitter",
    "crop",
    "flip",
    "pad_crop",
    "random_erasing",
    "random_patch",
    "resize",
    "to_tensor",
]

_BICUBIC = InterpolationMode.BICUBIC


def _size(cfg: CfgNode, is_train: bool) -> Tuple[int, int]:
    return tuple(cfg.INPUT.SIZE_TRAIN if is_train else cfg.INPUT.SIZE_TEST)


def _sometimes(enabled: bool, prob: float, make: Callable[[], Callable]) -> List[Callable]:
    # Off unless enabled with a positive probability (fast-reid's rule for AutoAugment and AugMix).
    return [T.RandomApply([make()], p=prob)] if enabled and prob > 0 else []


@TRANSFORM_REGISTRY.register()
def auto_augment(cfg: CfgNode, is_train: bool) -> List[Callable]:
    """AutoAugment (ImageNet policy) applied with probability AUTOAUG_PROB, when DO_AUTOAUG."""
    return _sometimes(cfg.INPUT.DO_AUTOAUG, cfg.INPUT.AUTOAUG_PROB, T.AutoAugment)


@TRANSFORM_REGISTRY.register()
def resize(cfg: CfgNode, is_train: bool) -> List[Callable]:
    """Bicubic resize to SIZE_TRAIN (skipped when its height is <= 0) or to SIZE_TEST."""
    size = _size(cfg, is_train)
    if is_train and size[0] <= 0:
        return []
    return [T.Resize(size, interpolation=_BICUBIC)]


@TRANSFORM_REGISTRY.register()
def crop(cfg: CfgNode, is_train: bool) -> List[Callable]:
    """When CROP.ENABLED: random resized crop to CROP.SIZE (SCALE, RATIO) in training, centre crop in test."""
    inp = cfg.INPUT
    if not inp.CROP.ENABLED:
        return []
    if not is_train:
        return [T.CenterCrop(tuple(inp.CROP.SIZE))]
    return [T.RandomResizedCrop(tuple(inp.CROP.SIZE), scale=tuple(inp.CROP.SCALE), ratio=tuple(inp.CROP.RATIO),
                                interpolation=_BICUBIC)]


@TRANSFORM_REGISTRY.register()
def pad_crop(cfg: CfgNode, is_train: bool) -> List[Callable]:
    """When DO_PAD: pad by PADDING (PADDING_MODE), then random-crop back to the image size (or CROP.SIZE)."""
    inp = cfg.INPUT
    if not inp.DO_PAD:
        return []
    size = _size(cfg, is_train)
    return [T.Pad(inp.PADDING, padding_mode=inp.PADDING_MODE),
            T.RandomCrop(size if size[0] > 0 else tuple(inp.CROP.SIZE))]


@TRANSFORM_REGISTRY.register()
def flip(cfg: CfgNode, is_train: bool) -> List[Callable]:
    """Horizontal flip with probability FLIP_PROB, when DO_FLIP."""
    inp = cfg.INPUT
    return [T.RandomHorizontalFlip(p=inp.FLIP_PROB)] if inp.DO_FLIP else []


@TRANSFORM_REGISTRY.register()
def color_jitter(cfg: CfgNode, is_train: bool) -> List[Callable]:
    """Colour jitter (CJ.BRIGHTNESS, CONTRAST, SATURATION, HUE) with probability CJ.PROB, when CJ.ENABLED."""
    cj = cfg.INPUT.CJ
    if not cj.ENABLED:
        return []
    return [T.RandomApply([T.ColorJitter(cj.BRIGHTNESS, cj.CONTRAST, cj.SATURATION, cj.HUE)], p=cj.PROB)]


@TRANSFORM_REGISTRY.register()
def affine(cfg: CfgNode, is_train: bool) -> List[Callable]:
    """Random affine (up to 10 degrees, scale 0.9-1.1, shear 0.1), when DO_AFFINE."""
    if not cfg.INPUT.DO_AFFINE:
        return []
    return [T.RandomAffine(degrees=10, scale=(0.9, 1.1), shear=0.1, fill=0)]


@TRANSFORM_REGISTRY.register()
def augmix(cfg: CfgNode, is_train: bool) -> List[Callable]:
    """AugMix applied with probability AUGMIX_PROB, when DO_AUGMIX."""
    return _sometimes(cfg.INPUT.DO_AUGMIX, cfg.INPUT.AUGMIX_PROB, T.AugMix)


@TRANSFORM_REGISTRY.register()
def to_tensor(cfg: CfgNode, is_train: bool) -> List[Callable]:
    """PIL image to a float ``3 x H x W`` tensor on the 0-255 scale (:class:`ToTensor255`)."""
    return [ToTensor255()]


@TRANSFORM_REGISTRY.register()
def random_erasing(cfg: CfgNode, is_train: bool) -> List[Callable]:
    """Random erasing with probability REA.PROB, filled with REA.VALUE (0-255 scale), when REA.ENABLED.

    Works on tensors: list it after ``to_tensor``.
    """
    rea = cfg.INPUT.REA
    if not rea.ENABLED:
        return []
    return [T.RandomErasing(p=rea.PROB, value=tuple(float(v) for v in rea.VALUE))]


@TRANSFORM_REGISTRY.register()
def random_patch(cfg: CfgNode, is_train: bool) -> List[Callable]:
    """:class:`RandomPatch` with probability RPT.PROB, when RPT.ENABLED. Works on tensors: list it after
    ``to_tensor``."""
    rpt = cfg.INPUT.RPT
    return [RandomPatch(prob_happen=rpt.PROB)] if rpt.ENABLED else []
