"""fast-reid reid checkpoints (``model_final.pth``) of models on fast-reid's lightweight backbones load whole.

fast-reid's MobileNetV2 and pycls's RegNet and EfficientNet (fast-reid's copies) name their layers unlike the
libraries' networks fastreid builds, and fastreid nests torchvision's networks under ``body.`` (MobileNetV3).
Each checkpoint is made as fast-reid's Checkpointer writes it: ``{"model": ..., "optimizer": ..., "epoch": ...}``
with the source network of ``published_sources.py`` (random weights, fast-reid's BatchNorm eps) under
``backbone.`` and a random ``EmbeddingHead`` in fast-reid's names (``heads.weight``). It is loaded as
``tools/train_net.py --eval-only MODEL.WEIGHTS <file>`` loads it (the model built without ImageNet weights,
``load_inference_weights``, which fails on any missing key): no key may be missing or unused, the backbone must
give the source network's features to 1e-5 and the head must hold the file's tensors.
"""
import logging
import sys
from pathlib import Path

import pytest
import torch

from fastreid.engine import DefaultTrainer
from fastreid.modeling.layouts.fast_reid import fast_reid
from fastreid.utils.checkpoint import load_inference_weights

sys.path.insert(0, str(Path(__file__).resolve().parent))
from published_sources import (  # noqa: E402
    CASES,
    FastReidMobileNetV2,
    assert_same_features,
    backbone_cfg,
    randomized,
)

FAST_REID_CASES = [c for c in CASES if c.framework in ("fast-reid", "pycls")]


def _reid_model(builder: str, depth: str) -> torch.nn.Module:
    """The model ``--eval-only`` builds for a config with this backbone (no ImageNet weights)."""
    cfg = backbone_cfg(builder, depth)
    cfg.MODEL.HEADS.NUM_CLASSES = 4
    return DefaultTrainer.build_model(cfg).eval()


def _fast_reid_heads(model: torch.nn.Module) -> dict:
    """Random weights for ``model``'s EmbeddingHead, under fast-reid's names (class centres: ``heads.weight``)."""
    generator = torch.Generator().manual_seed(2)
    heads = {}
    for key, value in model.heads.state_dict().items():
        if value.is_floating_point():  # positive, so that they also serve as BatchNorm variances
            value = torch.rand(value.shape, generator=generator) + 0.5
        heads["heads." + ("weight" if key == "classifier.weight" else key)] = value
    return heads


def _fast_reid_checkpoint(case, model: torch.nn.Module, path: Path):
    source = randomized(case.make_source())
    weights = {"backbone." + k: v for k, v in source.state_dict().items() if k not in case.left_out}
    weights.update(_fast_reid_heads(model))
    torch.save({"model": weights, "optimizer": {"state": {}, "param_groups": []}, "epoch": 59}, path)
    return source, weights


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in FAST_REID_CASES]
)
def test_eval_only_loads_every_tensor_of_a_fast_reid_checkpoint(case, tmp_path, caplog):
    model = _reid_model(*case.builder)
    path = tmp_path / "model_final.pth"
    source, weights = _fast_reid_checkpoint(case, model, path)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        load_inference_weights(model, str(path))  # raises when a model key is not in the file
    assert "as a fast_reid checkpoint" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text  # unused keys warn
    # One model tensor for each tensor of the file: none was loaded twice or left aside.
    assert len(weights) == len(model.state_dict())
    assert_same_features(model.backbone, source)
    for key, value in model.heads.state_dict().items():
        assert torch.equal(value, weights["heads." + ("weight" if key == "classifier.weight" else key)]), key


def test_backbone_keys_are_renamed_into_the_models_names():
    model = _reid_model("build_mobilenetv2_backbone", "1.0x")
    model_keys = set(model.state_dict())
    source = FastReidMobileNetV2()
    state = {"backbone." + k: v for k, v in source.state_dict().items() if not k.startswith("classifier.")}
    state["heads.weight"] = torch.zeros(4, 1280)
    converted = fast_reid({"model": state}, model_keys)["model"]
    assert {k for k in converted if k.startswith("backbone.")} == {k for k in model_keys if k.startswith("backbone.")}
    new_name = {id(value): key for key, value in converted.items()}  # the tensors are passed on, not copied
    renamed = {key: new_name[id(value)] for key, value in state.items()}
    # fast-reid's block [pw, bn, relu6, dw, bn, relu6, pw-linear, bn] is torchvision's [0: pw conv+bn, 1: dw
    # conv+bn, 2: pw-linear, 3: its bn], the first block [dw, bn, relu6, pw-linear, bn] torchvision's
    # [0: dw conv+bn, 1: pw-linear, 2: its bn]; fast-reid's final `conv` is torchvision's features.18.
    assert renamed["backbone.features.2.conv.7.weight"] == "backbone.body.features.2.conv.3.weight"
    assert renamed["backbone.features.2.conv.3.weight"] == "backbone.body.features.2.conv.1.0.weight"
    assert renamed["backbone.features.1.conv.4.bias"] == "backbone.body.features.1.conv.2.bias"
    assert renamed["backbone.conv.1.running_var"] == "backbone.body.features.18.1.running_var"
    assert renamed["heads.weight"] == "heads.classifier.weight"


def test_fastreid_checkpoint_of_a_lightweight_backbone_is_not_taken_for_fast_reids():
    for builder, depth in (("build_mobilenetv2_backbone", "1.0x"), ("build_effnet_backbone", "b0"),
                           ("build_regnet_backbone", "200y")):
        model = _reid_model(builder, depth)
        state = model.state_dict()
        assert fast_reid({"model": state, "iteration": 3}, set(state)) is None
