import random

import numpy as np
import pytest
import torch
from PIL import Image

from fastreid.config import get_cfg
from fastreid.data.transforms import RandomPatch, ToTensor255, build_transforms


def _img(h=24, w=12, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8))


def _cfg(*overrides):
    cfg = get_cfg()
    base = ["INPUT.SIZE_TRAIN", [16, 8], "INPUT.SIZE_TEST", [16, 8], "INPUT.DO_PAD", False, "INPUT.DO_FLIP", False]
    cfg.merge_from_list(base + list(overrides))
    return cfg


def test_to_tensor_keeps_0_255_scale():
    arr = np.random.default_rng(0).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    t = ToTensor255()(Image.fromarray(arr))
    assert t.dtype == torch.float32 and t.shape == (3, 5, 4)
    assert torch.equal(t, torch.from_numpy(arr).permute(2, 0, 1).float())


@pytest.mark.parametrize("is_train", [True, False])
def test_default_pipeline_shapes_and_range(is_train):
    cfg = get_cfg()
    cfg.merge_from_list(["INPUT.SIZE_TRAIN", [16, 8], "INPUT.SIZE_TEST", [20, 10], "INPUT.PADDING", 2,
                         "INPUT.REA.ENABLED", True, "INPUT.RPT.ENABLED", True])
    out = build_transforms(cfg, is_train)(_img())
    assert out.shape == ((3, 16, 8) if is_train else (3, 20, 10))
    assert out.min() >= 0 and out.max() <= 255 and out.max() > 1


def _rate(transform, changed, n=400, seed=0):
    torch.manual_seed(seed)
    random.seed(seed)
    img = _img(16, 8)
    ref = ToTensor255()(img)
    return np.mean([changed(transform(img), ref) for _ in range(n)])


def _differs(a, b):
    return not torch.equal(a, b)


@pytest.mark.parametrize("overrides,p", [
    (["INPUT.DO_FLIP", True, "INPUT.FLIP_PROB", 0.3], 0.3),
    (["INPUT.CJ.ENABLED", True, "INPUT.CJ.PROB", 0.4], 0.4),
    (["INPUT.REA.ENABLED", True, "INPUT.REA.PROB", 0.5], 0.5),
    (["INPUT.DO_AUTOAUG", True, "INPUT.AUTOAUG_PROB", 0.2], 0.2),
    (["INPUT.DO_AUGMIX", True, "INPUT.AUGMIX_PROB", 0.3], 0.3),
])
def test_applied_at_its_probability(overrides, p):
    rate = _rate(build_transforms(_cfg(*overrides), True), _differs)
    # AutoAugment policies include near-identity operations, so allow it to change slightly less often.
    assert p - 0.09 <= rate <= p + 0.07, rate


def test_flip_is_a_mirror_and_rea_fills_value():
    cfg = _cfg("INPUT.DO_FLIP", True, "INPUT.FLIP_PROB", 1.0)
    img = _img(16, 8)
    assert torch.equal(build_transforms(cfg, True)(img), ToTensor255()(img).flip(-1))
    cfg = _cfg("INPUT.REA.ENABLED", True, "INPUT.REA.PROB", 1.0, "INPUT.REA.VALUE", [1.0, 2.0, 3.0])
    torch.manual_seed(0)
    out = build_transforms(cfg, True)(img)
    erased = (out[0] == 1.0) & (out[1] == 2.0) & (out[2] == 3.0)
    assert erased.sum() > 0


def test_pad_crop_random_resized_crop_and_affine_shapes():
    for overrides in (["INPUT.DO_PAD", True, "INPUT.PADDING", 3],
                      ["INPUT.CROP.ENABLED", True, "INPUT.CROP.SIZE", [12, 6]],
                      ["INPUT.DO_AFFINE", True]):
        out = build_transforms(_cfg(*overrides), True)(_img())
        assert out.shape == ((3, 12, 6) if "INPUT.CROP.ENABLED" in overrides else (3, 16, 8))


def test_random_patch_waits_for_pool_then_pastes_at_rate():
    random.seed(0)
    rp = RandomPatch(prob_happen=0.5, min_sample_size=10)
    imgs = [torch.full((3, 16, 8), float(i)) for i in range(200)]
    outs = [rp(x) for x in imgs]
    assert all(torch.equal(o, x) for o, x in zip(outs[:9], imgs[:9]))
    rate = np.mean([_differs(o, x) for o, x in zip(outs[10:], imgs[10:])])
    assert 0.38 <= rate <= 0.62, rate
