import sys
from pathlib import Path

import pytest
import torch

from fastreid.config import get_cfg
from fastreid.modeling import LOSS_REGISTRY, META_ARCH_REGISTRY, build_model
from fastreid.modeling.losses import ReIDLoss
from fastreid.utils.events import EventStorage

sys.path.insert(0, str(Path(__file__).parent))
from toy_backbone import toy_backbone_registered  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def toy_backbone():
    @LOSS_REGISTRY.register()
    class MeanFeatureTestLoss(ReIDLoss):
        input_key = "features"
        term = "meanfeat"

        def __init__(self, cfg):
            super().__init__(scale=2.0)

        def compute(self, inputs, targets):
            return inputs.pow(2).mean()

    with toy_backbone_registered("build_tiny_test_backbone"):
        yield
    LOSS_REGISTRY._obj_map.pop("MeanFeatureTestLoss")


def _cfg(num_classes=3, **model):
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.BACKBONE.NAME = "build_tiny_test_backbone"
    cfg.MODEL.BACKBONE.PRETRAIN = False
    cfg.MODEL.HEADS.NUM_CLASSES = num_classes
    for key, value in model.items():
        cfg.MODEL[key] = value
    return cfg


def _batch():
    return {"images": torch.rand(4, 3, 16, 8) * 255, "targets": torch.tensor([0, 0, 2, 2])}


def test_baseline_train_sums_configured_losses_and_eval_returns_features():
    cfg = _cfg()
    cfg.MODEL.LOSSES.NAME = ("CrossEntropyLoss", "MeanFeatureTestLoss")
    model = build_model(cfg)
    batch = _batch()
    images = batch["images"].clone()
    losses = model(batch)
    assert set(losses) == {"loss_cls", "loss_meanfeat"} and all(v.dim() == 0 for v in losses.values())
    assert torch.equal(batch["images"], images)
    with torch.no_grad():
        features = model.heads(model.backbone((images - model.pixel_mean) / model.pixel_std), batch["targets"])
    torch.testing.assert_close(losses["loss_meanfeat"], 2.0 * features["features"].pow(2).mean())
    sum(losses.values()).backward()
    assert model.backbone[0].weight.grad.abs().sum() > 0
    model.eval()
    assert model(batch).shape == (4, 8)
    torch.testing.assert_close(model(batch["images"]), model(batch))


def test_accuracy_goes_to_event_storage_not_losses():
    model = build_model(_cfg())
    with EventStorage() as storage:
        losses = model(_batch())
        assert "cls_accuracy" in storage.latest()
    assert set(losses) == {"loss_cls"}


def test_num_classes_zero_fails_in_training_only():
    model = build_model(_cfg(num_classes=0))
    with pytest.raises(ValueError, match="NUM_CLASSES"):
        model(_batch())
    model.eval()
    assert model(_batch()).shape == (4, 8)


def test_unavailable_device_and_unknown_arch():
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="MODEL.DEVICE cpu"):
            build_model(_cfg(DEVICE="cuda"))
    with pytest.raises(KeyError, match="META_ARCH"):
        build_model(_cfg(META_ARCHITECTURE="Baselin"))


def test_model_follows_config_device():
    model = build_model(_cfg())
    assert model.pixel_mean.device == torch.device("cpu") and model.device.type == "cpu"
    assert "Baseline" in META_ARCH_REGISTRY


def test_mgn_layout_losses_and_features():
    cfg = _cfg(META_ARCHITECTURE="MGN")
    cfg.MODEL.BACKBONE.NAME = "build_resnet_backbone"
    cfg.MODEL.BACKBONE.DEPTH = "18x"
    cfg.MODEL.BACKBONE.LAST_STRIDE = 2
    cfg.MODEL.HEADS.EMBEDDING_DIM = 16
    cfg.MODEL.LOSSES.NAME = ("CrossEntropyLoss", "TripletLoss")
    model = build_model(cfg)
    assert {"backbone", "b1", "b2", "b3", "heads"} <= {n for n, _ in model.named_children()}
    assert sorted(model.heads) == sorted(["b1", "b2", "b3", "b21", "b22", "b31", "b32", "b33"])
    # Part branches keep full resolution; the global branch uses LAST_STRIDE.
    x = model.backbone(torch.randn(1, 3, 96, 32))
    assert model.b1(x).shape[-2:] == (3, 1) and model.b2(x).shape[-2:] == (6, 2)
    batch = {"images": torch.rand(4, 3, 96, 32) * 255, "targets": torch.tensor([0, 0, 1, 1])}
    losses = model(batch)
    heads = ["b1", "b2", "b3", "b21", "b22", "b31", "b32", "b33"]
    assert set(losses) == {f"loss_cls_{h}" for h in heads} | {f"loss_triplet_b{i}" for i in (1, 2, 3)}
    sum(losses.values()).backward()
    model.eval()
    assert model(batch).shape == (4, 8 * 16)


def test_bf16_autocast_training_step_is_finite():
    cfg = _cfg()
    cfg.MODEL.HEADS.CLS_LAYER = "CircleSoftmax"
    cfg.MODEL.HEADS.SCALE = 64
    cfg.MODEL.HEADS.MARGIN = 0.35
    cfg.MODEL.LOSSES.NAME = ("CrossEntropyLoss", "TripletLoss", "CircleLoss", "CosFaceLoss")
    model = build_model(cfg)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model(_batch())
    total = sum(v.float() for v in losses.values())
    total.backward()
    assert torch.isfinite(total) and all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
