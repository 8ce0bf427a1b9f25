import random

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image
from torchvision.transforms import InterpolationMode

from fastreid.config import get_cfg
from fastreid.data import build_reid_train_loader
from fastreid.data.transforms import TRANSFORM_REGISTRY, RandomPatch, ToTensor255, build_transforms


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


_BICUBIC = InterpolationMode.BICUBIC
_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
# (INPUT overrides, expected train pipeline, expected test pipeline): the pipelines build_transforms produced
# before the steps became registered builders, written out transform by transform.
_PIPELINES = [
    ([],
     [T.Resize((256, 128), interpolation=_BICUBIC), T.Pad(10, padding_mode="constant"), T.RandomCrop((256, 128)),
      T.RandomHorizontalFlip(p=0.5), ToTensor255()],
     [T.Resize((256, 128), interpolation=_BICUBIC), ToTensor255()]),
    (["INPUT.DO_AUTOAUG", True, "INPUT.AUTOAUG_PROB", 0.3, "INPUT.CJ.ENABLED", True, "INPUT.DO_AFFINE", True,
      "INPUT.DO_AUGMIX", True, "INPUT.AUGMIX_PROB", 0.2, "INPUT.REA.ENABLED", True, "INPUT.RPT.ENABLED", True],
     [T.RandomApply([T.AutoAugment()], p=0.3), T.Resize((256, 128), interpolation=_BICUBIC),
      T.Pad(10, padding_mode="constant"), T.RandomCrop((256, 128)), T.RandomHorizontalFlip(p=0.5),
      T.RandomApply([T.ColorJitter(0.15, 0.15, 0.1, 0.1)], p=0.5),
      T.RandomAffine(degrees=10, scale=(0.9, 1.1), shear=0.1, fill=0), T.RandomApply([T.AugMix()], p=0.2),
      ToTensor255(), T.RandomErasing(p=0.5, value=_MEAN), RandomPatch(prob_happen=0.5)],
     [T.Resize((256, 128), interpolation=_BICUBIC), ToTensor255()]),
    (["INPUT.CROP.ENABLED", True, "INPUT.DO_PAD", True, "INPUT.SIZE_TRAIN", [0, 0], "INPUT.SIZE_TEST", [384, 128]],
     [T.RandomResizedCrop((224, 224), scale=(0.16, 1.0), ratio=(3 / 4, 4 / 3), interpolation=_BICUBIC),
      T.Pad(10, padding_mode="constant"), T.RandomCrop((224, 224)), T.RandomHorizontalFlip(p=0.5), ToTensor255()],
     [T.Resize((384, 128), interpolation=_BICUBIC), T.CenterCrop((224, 224)), ToTensor255()]),
    (["INPUT.DO_AUTOAUG", True, "INPUT.AUTOAUG_PROB", 0.0, "INPUT.DO_AUGMIX", True, "INPUT.AUGMIX_PROB", 0.0,
      "INPUT.PADDING_MODE", "reflect", "INPUT.PADDING", 4, "INPUT.DO_FLIP", False],
     [T.Resize((256, 128), interpolation=_BICUBIC), T.Pad(4, padding_mode="reflect"), T.RandomCrop((256, 128)),
      ToTensor255()],
     [T.Resize((256, 128), interpolation=_BICUBIC), ToTensor255()]),
]


@pytest.mark.parametrize("overrides,train,test", _PIPELINES)
def test_default_step_lists_build_the_fixed_pipelines(overrides, train, test):
    cfg = get_cfg()
    cfg.merge_from_list(overrides)
    assert repr(build_transforms(cfg, True)) == repr(T.Compose(train))
    assert repr(build_transforms(cfg, False)) == repr(T.Compose(test))


class _AddOne:
    def __call__(self, x):
        return x + 1

    def __repr__(self):
        return "AddOne()"


@pytest.fixture
def add_one_step():
    """A step registered for the test: ``add_one_test_step`` adds 1 to a tensor in training only."""

    @TRANSFORM_REGISTRY.register()
    def add_one_test_step(cfg, is_train):
        return [_AddOne()] if is_train else []

    yield add_one_test_step.__name__
    del TRANSFORM_REGISTRY._obj_map[add_one_test_step.__name__]


def test_registered_step_runs_where_the_config_lists_it(add_one_step):
    cfg = _cfg()
    steps = cfg.INPUT.TRAIN_TRANSFORMS
    cfg.INPUT.TRAIN_TRANSFORMS = steps[: steps.index("to_tensor") + 1] + [add_one_step] + steps[steps.index("to_tensor") + 1:]
    cfg.INPUT.TEST_TRANSFORMS = cfg.INPUT.TEST_TRANSFORMS + [add_one_step]
    train = build_transforms(cfg, True)
    assert repr(train.transforms[-1]) == "AddOne()" and isinstance(train.transforms[-2], ToTensor255)
    img = _img(16, 8)
    assert torch.equal(train(img), ToTensor255()(img) + 1)
    assert torch.equal(build_transforms(cfg, False)(img), ToTensor255()(img))  # the step chose no-op in test
    assert not any(isinstance(t, _AddOne) for t in build_transforms(_cfg(), True).transforms)  # not listed


def test_train_loader_uses_a_step_given_in_yaml(add_one_step, tiny_synthetic_cfg, tmp_path):
    def first_batch(steps):
        cfg = tiny_synthetic_cfg.clone()
        yaml = tmp_path / "steps.yml"
        yaml.write_text(f"INPUT:\n  TRAIN_TRANSFORMS: [{', '.join(steps)}]\n")
        cfg.merge_from_file(str(yaml))
        return next(iter(build_reid_train_loader(cfg, seed=3)))["images"]

    plain = first_batch(["resize", "to_tensor"])
    assert torch.equal(first_batch(["resize", "to_tensor", add_one_step]), plain + 1)


def test_unknown_or_malformed_steps_fail_clearly(monkeypatch):
    cfg = _cfg()
    cfg.INPUT.TRAIN_TRANSFORMS = ["resize", "gausian_blur"]
    with pytest.raises(KeyError, match=r"INPUT.TRAIN_TRANSFORMS.*gausian_blur.*random_erasing"):
        build_transforms(cfg, True)
    monkeypatch.setitem(TRANSFORM_REGISTRY._obj_map, "not_a_list_test_step", lambda cfg, is_train: _AddOne())
    cfg.INPUT.TEST_TRANSFORMS = ["not_a_list_test_step"]
    with pytest.raises(TypeError, match="not_a_list_test_step.*list"):
        build_transforms(cfg, False)
