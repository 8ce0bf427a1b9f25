"""Keys read by one meta-architecture only (KD.* by Distiller, MODEL.QUEUE_SIZE / MODEL.MOCO.* by MoCo) warn
when set for a model that ignores them, instead of being dropped in silence."""
import logging
import sys
from pathlib import Path

import pytest

from fastreid.config import get_cfg
from fastreid.modeling import build_model
from fastreid.modeling.meta_arch.build import META_ARCH_KEYS

sys.path.insert(0, str(Path(__file__).parent))
from toy_backbone import toy_backbone_registered  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def toy_backbone():
    with toy_backbone_registered("build_meta_arch_keys_test_backbone"):
        yield


def _build(caplog, *opts):
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.NAME", "build_meta_arch_keys_test_backbone",
                         "MODEL.BACKBONE.PRETRAIN", "False", "MODEL.BACKBONE.FEAT_DIM", "8", "MODEL.HEADS.NUM_CLASSES", "3",
                         *opts])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fastreid.modeling.meta_arch.build"):
        build_model(cfg)
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and r.name == "fastreid.modeling.meta_arch.build"]


def test_kd_keys_on_a_baseline_warn_naming_the_key_and_the_fix(caplog):
    warnings = _build(caplog, "KD.MODEL_CONFIG", "teacher.yml", "KD.EMA.ENABLED", "True")
    assert len(warnings) == 2
    assert any("KD.MODEL_CONFIG = 'teacher.yml'" in w and "MODEL.META_ARCHITECTURE Distiller" in w for w in warnings)
    assert any("KD.EMA.ENABLED" in w and "Baseline" in w for w in warnings)


def test_moco_keys_warn_on_a_baseline_but_not_on_moco(caplog):
    assert any("MODEL.QUEUE_SIZE" in w for w in _build(caplog, "MODEL.QUEUE_SIZE", "16"))
    assert _build(caplog, "MODEL.META_ARCHITECTURE", "MoCo", "MODEL.QUEUE_SIZE", "16") == []


def test_defaults_do_not_warn(caplog):
    assert _build(caplog) == []


def test_every_listed_key_exists_in_the_defaults():
    cfg = get_cfg()
    for keys in META_ARCH_KEYS.values():
        for key in keys:
            node = cfg
            for part in key.split("."):
                node = node[part]
