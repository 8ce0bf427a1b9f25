import logging

import pytest
import torch
import torchvision
from torch import nn

from fastreid.config import get_cfg
from fastreid.modeling import BACKBONE_REGISTRY, build_backbone
from fastreid.modeling.pretrained import load_pretrained_weights


def _cfg(**backbone):
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.BACKBONE.PRETRAIN = False
    for key, value in backbone.items():
        cfg.MODEL.BACKBONE[key] = value
    return cfg


def _params(m):
    return sum(p.numel() for p in m.parameters())


def test_resnet50_parameter_count_and_torchvision_names():
    backbone = build_backbone(_cfg())
    assert abs(_params(backbone) - 23.5e6) < 0.1e6
    tv = {k: v.shape for k, v in torchvision.models.resnet50().state_dict().items() if not k.startswith("fc.")}
    own = {k: v.shape for k, v in backbone.state_dict().items()}
    assert own == tv


@pytest.mark.parametrize(
    "overrides,channels,hw",
    [
        ({"DEPTH": "18x"}, 512, (4, 2)),
        ({"DEPTH": "34x", "LAST_STRIDE": 2}, 512, (2, 1)),
        ({"WITH_IBN": True, "WITH_SE": True, "WITH_NL": True}, 2048, (4, 2)),
        ({"NAME": "build_resnext_backbone", "WITH_IBN": True}, 2048, (4, 2)),
        ({"NAME": "build_resnest_backbone"}, 2048, (4, 2)),
        ({"NORM": "GN"}, 2048, (4, 2)),
    ],
)
def test_backbone_variants_honour_the_contract(overrides, channels, hw):
    backbone = build_backbone(_cfg(**overrides))
    assert backbone.out_channels == channels
    assert backbone(torch.randn(2, 3, 64, 32)).shape == (2, channels, *hw)


def test_options_change_the_architecture_as_published():
    ibn = build_backbone(_cfg(WITH_IBN=True))
    assert isinstance(ibn.layer3[0].bn1.IN, nn.InstanceNorm2d) and not hasattr(ibn.layer4[0].bn1, "IN")
    nl = build_backbone(_cfg(WITH_NL=True))
    assert [len(getattr(nl, f"NL_{i}")) for i in range(1, 5)] == [0, 2, 3, 0]
    nl101 = build_backbone(_cfg(WITH_NL=True, DEPTH="101x"))
    assert [len(getattr(nl101, f"NL_{i}")) for i in range(1, 5)] == [0, 2, 9, 0]
    # ResNeSt-50 without its ImageNet classifier: 27.48M - 2.05M.
    assert abs(_params(build_backbone(_cfg(NAME="build_resnest_backbone"))) - 25.43e6) < 0.05e6
    resnext = build_backbone(_cfg(NAME="build_resnext_backbone", DEPTH="50x"))
    tv = torchvision.models.resnext50_32x4d().state_dict()
    assert {k: v.shape for k, v in resnext.state_dict().items()} == {
        k: v.shape for k, v in tv.items() if not k.startswith("fc.")
    }


def test_pretrained_torchvision_weights_load_from_path(tmp_path):
    reference = torchvision.models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save(reference.state_dict(), path)
    backbone = build_backbone(_cfg(DEPTH="18x", PRETRAIN=True, PRETRAIN_PATH=str(path)))
    ref = reference.state_dict()
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, ref[key]), key


def test_mismatches_are_reported_in_one_table(tmp_path, caplog):
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    state = {"0.weight": torch.zeros(5, 3), "0.bias": torch.ones(4), "extra": torch.zeros(1)}
    with caplog.at_level(logging.WARNING):
        result = load_pretrained_weights(model, {"model": state})
    assert result.missing == ["1.weight", "1.bias"] and result.unexpected == ["extra"]
    assert result.shape_mismatch == ["0.weight"]
    assert torch.equal(model[0].bias, torch.ones(4))
    table = [r.getMessage() for r in caplog.records if "mismatches" in r.getMessage()]
    assert len(table) == 1 and "(5, 3) vs (4, 3)" in table[0] and "extra" in table[0]


def test_hub_cache_lookup_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        build_backbone(_cfg(DEPTH="18x", PRETRAIN=True))
    message = str(err.value)
    assert "resnet18-f37072fd.pth" in message and str(tmp_path / "checkpoints") in message
    assert "MODEL.BACKBONE.PRETRAIN False" in message
    # A re-released file of the same architecture under another hash is found.
    (tmp_path / "checkpoints").mkdir()
    reference = torchvision.models.resnet18()
    torch.save(reference.state_dict(), tmp_path / "checkpoints" / "resnet18-0123abcd.pth")
    backbone = build_backbone(_cfg(DEPTH="18x", PRETRAIN=True))
    assert torch.equal(backbone.conv1.weight, reference.conv1.weight)


def test_missing_pretrain_path_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="PRETRAIN_PATH"):
        build_backbone(_cfg(PRETRAIN=True, PRETRAIN_PATH="/nonexistent/weights.pth"))


def test_unknown_backbone_and_depth():
    with pytest.raises(KeyError, match="build_resnet_backbone"):
        build_backbone(_cfg(NAME="build_resnet_backbon"))
    with pytest.raises(KeyError, match="DEPTH"):
        build_backbone(_cfg(DEPTH="42x"))


def test_project_registered_backbone_and_contract_check():
    @BACKBONE_REGISTRY.register()
    def build_toy_test_backbone(cfg):
        toy = nn.Conv2d(3, 7, 3, 4)
        toy.out_channels = 7
        return toy

    @BACKBONE_REGISTRY.register()
    def build_contractless_test_backbone(cfg):
        return nn.Identity()

    try:
        assert build_backbone(_cfg(NAME="build_toy_test_backbone")).out_channels == 7
        with pytest.raises(TypeError, match="out_channels"):
            build_backbone(_cfg(NAME="build_contractless_test_backbone"))
    finally:
        BACKBONE_REGISTRY._obj_map.pop("build_toy_test_backbone")
        BACKBONE_REGISTRY._obj_map.pop("build_contractless_test_backbone")
