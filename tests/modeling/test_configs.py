"""Every config file builds a model that trains one step and evaluates, on CPU at a tiny input size (48×16:
the smallest that still gives MGN three stripes).

Files with the same MODEL section share one built model, so the check costs one build per distinct model.
"""
import math
from pathlib import Path

import pytest
import torch

from fastreid.config import get_cfg
from fastreid.modeling import BACKBONE_REGISTRY, build_model

REPO = Path(__file__).resolve().parents[2]
OUR_CONFIGS = sorted((REPO / "configs").rglob("*.yml"))
REFERENCE_DIR = REPO.parent / "shared" / "reference-configs" / "fast-reid"
REFERENCE_CONFIGS = sorted(REFERENCE_DIR.rglob("*.yml")) if REFERENCE_DIR.is_dir() else []

_RESULTS = {}


def _run(path: Path):
    cfg = get_cfg()
    cfg.merge_from_file(str(path))
    if cfg.MODEL.BACKBONE.NAME not in BACKBONE_REGISTRY:
        pytest.skip(f"backbone '{cfg.MODEL.BACKBONE.NAME}' is not implemented yet")
    cfg.merge_from_list(
        ["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", False, "MODEL.HEADS.NUM_CLASSES", 2, "MODEL.WEIGHTS", ""]
    )
    key = cfg.MODEL.dump()
    if key not in _RESULTS:
        torch.manual_seed(0)
        model = build_model(cfg).train()
        batch = {"images": torch.rand(4, 3, 48, 16) * 255, "targets": torch.tensor([0, 0, 1, 1])}
        losses = model(batch)
        sum(losses.values()).backward()
        grads = [p.grad for p in model.backbone.parameters() if p.grad is not None]
        model.eval()
        with torch.no_grad():
            features = model(batch)
        heads = model.heads.values() if isinstance(model.heads, torch.nn.ModuleDict) else [model.heads]
        _RESULTS[key] = {
            "losses": {k: v.item() for k, v in losses.items()},
            "backbone_has_grad": any(g.abs().sum() > 0 for g in grads),
            "features": tuple(features.shape),
            "finite_features": bool(torch.isfinite(features).all()),
            "expected_dim": sum(h.embedding_dim for h in heads),
        }
    return cfg, _RESULTS[key]


def _check(path: Path):
    cfg, result = _run(path)
    assert result["losses"], "training mode returned no loss terms"
    assert all(k.startswith("loss_") and math.isfinite(v) for k, v in result["losses"].items()), result["losses"]
    names = {n.replace("Loss", "").lower() for n in cfg.MODEL.LOSSES.NAME}
    assert len(result["losses"]) >= len(names)
    assert result["backbone_has_grad"]
    assert result["features"] == (4, result["expected_dim"]) and result["finite_features"]


def test_every_config_family_is_present():
    names = {p.relative_to(REPO / "configs").as_posix() for p in OUR_CONFIGS}
    for ds in ("Market1501", "DukeMTMC", "MSMT17"):
        for recipe in ("bagtricks", "AGW", "sbs"):
            for bb in ("R50", "R50-ibn", "S50", "R101-ibn"):
                assert f"{ds}/{recipe}_{bb}.yml" in names
        assert f"{ds}/mgn_R50-ibn.yml" in names
    assert {"VeRi/sbs_R50-ibn.yml", "VehicleID/bagtricks_R50-ibn.yml", "VERIWild/bagtricks_R50-ibn.yml"} <= names


@pytest.mark.parametrize("path", OUR_CONFIGS, ids=lambda p: p.relative_to(REPO / "configs").as_posix())
def test_project_config_builds_trains_and_evaluates(path):
    _check(path)


@pytest.mark.skipif(not REFERENCE_CONFIGS, reason=f"{REFERENCE_DIR} is absent (only in the project's workspace)")
@pytest.mark.parametrize("path", REFERENCE_CONFIGS, ids=lambda p: p.relative_to(REFERENCE_DIR).as_posix())
def test_reference_config_builds_trains_and_evaluates(path):
    _check(path)
