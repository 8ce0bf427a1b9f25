"""Build the train / test image transforms from the INPUT.* config keys."""
import logging

import torchvision.transforms as T
from torchvision.transforms import InterpolationMode

from fastreid.config import CfgNode

from .transforms import RandomPatch, ToTensor255

logger = logging.getLogger(__name__)

_BICUBIC = InterpolationMode.BICUBIC


def build_transforms(cfg: CfgNode, is_train: bool = True) -> T.Compose:
    """The image transform: PIL RGB image -> float ``3 x H x W`` tensor on the 0-255 scale.

    Train order (each step only when enabled): AutoAugment (with AUTOAUG_PROB), resize to SIZE_TRAIN,
    random resized crop (CROP), pad + random crop (DO_PAD), flip (FLIP_PROB), colour jitter (CJ.PROB),
    random affine, AugMix (AUGMIX_PROB), to tensor, random erasing (REA, fill on the 0-255 scale),
    random patch (RPT). Test: resize to SIZE_TEST (then centre crop with CROP.ENABLED), to tensor.
    Sizes are (height, width).
    """
    inp = cfg.INPUT
    res = []
    if not is_train:
        res.append(T.Resize(tuple(inp.SIZE_TEST), interpolation=_BICUBIC))
        if inp.CROP.ENABLED:
            res.append(T.CenterCrop(tuple(inp.CROP.SIZE)))
        res.append(ToTensor255())
        return T.Compose(res)

    size = tuple(inp.SIZE_TRAIN)
    if inp.DO_AUTOAUG and inp.AUTOAUG_PROB > 0:
        res.append(T.RandomApply([T.AutoAugment()], p=inp.AUTOAUG_PROB))
    if size[0] > 0:
        res.append(T.Resize(size, interpolation=_BICUBIC))
    if inp.CROP.ENABLED:
        res.append(T.RandomResizedCrop(tuple(inp.CROP.SIZE), scale=tuple(inp.CROP.SCALE),
                                       ratio=tuple(inp.CROP.RATIO), interpolation=_BICUBIC))
    if inp.DO_PAD:
        res.append(T.Pad(inp.PADDING, padding_mode=inp.PADDING_MODE))
        res.append(T.RandomCrop(size if size[0] > 0 else tuple(inp.CROP.SIZE)))
    if inp.DO_FLIP:
        res.append(T.RandomHorizontalFlip(p=inp.FLIP_PROB))
    if inp.CJ.ENABLED:
        jitter = T.ColorJitter(inp.CJ.BRIGHTNESS, inp.CJ.CONTRAST, inp.CJ.SATURATION, inp.CJ.HUE)
        res.append(T.RandomApply([jitter], p=inp.CJ.PROB))
    if inp.DO_AFFINE:
        res.append(T.RandomAffine(degrees=10, scale=(0.9, 1.1), shear=0.1, fill=0))
    if inp.DO_AUGMIX and inp.AUGMIX_PROB > 0:
        res.append(T.RandomApply([T.AugMix()], p=inp.AUGMIX_PROB))
    res.append(ToTensor255())
    if inp.REA.ENABLED:
        res.append(T.RandomErasing(p=inp.REA.PROB, value=tuple(float(v) for v in inp.REA.VALUE)))
    if inp.RPT.ENABLED:
        res.append(RandomPatch(prob_happen=inp.RPT.PROB))
    return T.Compose(res)
