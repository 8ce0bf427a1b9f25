"""NORM_REGISTRY: the built-in names, and a norm registered by a user reaching backbones and heads by config."""
import pytest
import torch
from torch import nn

from fastreid.config import get_cfg
from fastreid.layers import NORM_NAMES, NORM_REGISTRY, get_norm
from fastreid.modeling import build_model


class _TestNorm(nn.BatchNorm2d):
    """A user norm: a BatchNorm2d subclass, so it is recognisable and still trains normally."""


@pytest.fixture
def user_norm():
    @NORM_REGISTRY.register()
    def TestNorm(channels):  # the registry key is the name configs use
        return _TestNorm(channels)

    yield "TestNorm"
    del NORM_REGISTRY._obj_map["TestNorm"]


def test_built_in_names_come_from_the_registry():
    assert NORM_NAMES == ["BN", "FrozenBN", "GN", "GhostBN", "SyncBN", "syncBN"]
    assert all(name in NORM_REGISTRY for name in NORM_NAMES)
    assert type(get_norm("syncBN", 4)) is type(get_norm("SyncBN", 4))
    assert isinstance(get_norm("GN", 64), nn.GroupNorm) and get_norm("GN", 64).num_groups == 32


def test_registered_norm_builds_and_freezes_its_bias(user_norm):
    layer = get_norm(user_norm, 6, bias_freeze=True)
    assert type(layer) is _TestNorm and layer.num_features == 6
    assert not layer.bias.requires_grad and torch.count_nonzero(layer.bias) == 0
    assert user_norm in NORM_REGISTRY.names()


def test_registered_norm_is_used_through_the_backbone_and_heads_keys(user_norm):
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.FEAT_DIM", 512,
                         "MODEL.BACKBONE.PRETRAIN", False, "MODEL.HEADS.NUM_CLASSES", 4,
                         "MODEL.BACKBONE.NORM", user_norm])
    model = build_model(cfg)
    backbone_norms = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert backbone_norms and all(type(m) is _TestNorm for m in backbone_norms)
    assert not any(isinstance(m, _TestNorm) for m in model.heads.modules())  # MODEL.HEADS.NORM is still BN

    cfg.merge_from_list(["MODEL.BACKBONE.NORM", "BN", "MODEL.HEADS.NORM", user_norm])
    model = build_model(cfg)
    assert not any(isinstance(m, _TestNorm) for m in model.backbone.modules())
    (neck,) = [m for m in model.heads.modules() if isinstance(m, _TestNorm)]
    assert neck.num_features == 512 and not neck.bias.requires_grad  # the BNNeck, bias frozen


def test_builder_must_return_a_module(monkeypatch):
    monkeypatch.setitem(NORM_REGISTRY._obj_map, "NotAModuleTestNorm", lambda channels: channels)
    with pytest.raises(TypeError, match="NotAModuleTestNorm.*nn.Module"):
        get_norm("NotAModuleTestNorm", 8)
