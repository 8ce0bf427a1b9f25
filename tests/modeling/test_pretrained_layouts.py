"""Published ImageNet files load by name into the matching architecture, found in the hub cache by their names.

The state dicts are generated here in the publishers' key layout (written out from their architecture, not read
from fastreid's model), so a renamed module in fastreid fails these tests.
"""
import logging

import pytest
import torch
import torchvision

from fastreid.config import get_cfg
from fastreid.modeling import build_backbone
from fastreid.modeling.pretrained import OFFLINE_ENV

_BLOCKS = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3)}


def _bn(prefix, channels):
    return {
        f"{prefix}.weight": torch.rand(channels) + 0.5,
        f"{prefix}.bias": torch.randn(channels),
        f"{prefix}.running_mean": torch.randn(channels),
        f"{prefix}.running_var": torch.rand(channels) + 0.5,
        f"{prefix}.num_batches_tracked": torch.tensor(7),
    }


def ibn_net_resnet_state(depth):
    """IBN-Net's ``resnet<depth>_ibn_a`` file: torchvision's ResNet names, the first norm of every block in
    stages 1–3 split into ``IN`` (affine instance norm, half the channels) and ``BN``."""
    bottleneck = depth >= 50
    expansion = 4 if bottleneck else 1
    state = {"conv1.weight": torch.randn(64, 3, 7, 7), **_bn("bn1", 64)}
    inplanes = 64
    for stage, blocks in enumerate(_BLOCKS[depth], start=1):
        planes = 64 * 2 ** (stage - 1)
        for b in range(blocks):
            p = f"layer{stage}.{b}"
            state[f"{p}.conv1.weight"] = torch.randn(planes, inplanes, *((1, 1) if bottleneck else (3, 3)))
            if stage < 4:
                half = planes // 2
                state.update({f"{p}.bn1.IN.weight": torch.rand(half), f"{p}.bn1.IN.bias": torch.randn(half)})
                state.update(_bn(f"{p}.bn1.BN", planes - half))
            else:
                state.update(_bn(f"{p}.bn1", planes))
            state[f"{p}.conv2.weight"] = torch.randn(planes, planes, 3, 3)
            state.update(_bn(f"{p}.bn2", planes))
            if bottleneck:
                state[f"{p}.conv3.weight"] = torch.randn(planes * 4, planes, 1, 1)
                state.update(_bn(f"{p}.bn3", planes * 4))
            if b == 0 and (stage > 1 or inplanes != planes * expansion):
                state[f"{p}.downsample.0.weight"] = torch.randn(planes * expansion, inplanes, 1, 1)
                state.update(_bn(f"{p}.downsample.1", planes * expansion))
            inplanes = planes * expansion
    state.update({"fc.weight": torch.randn(1000, inplanes), "fc.bias": torch.randn(1000)})
    return state


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setenv(OFFLINE_ENV, "1")  # the file must come from the cache
    (tmp_path / "checkpoints").mkdir()
    return tmp_path / "checkpoints"


def _build(**backbone):
    cfg = get_cfg()
    cfg.MODEL.BACKBONE.PRETRAIN = True
    for key, value in backbone.items():
        cfg.MODEL.BACKBONE[key] = value
    return build_backbone(cfg)


def _assert_loaded_exactly(model, state):
    own = model.state_dict()
    assert set(own) == {k for k in state if not k.startswith("fc.")}
    for key, value in own.items():
        assert torch.equal(value, state[key]), key


@pytest.mark.parametrize("depth, file_name", [(18, "resnet18_ibn_a-2f571257.pth"), (50, "resnet50_ibn_a-d9d0bb7b.pth")])
def test_ibn_net_files_load_into_resnet_ibn(hub, caplog, depth, file_name):
    torch.manual_seed(depth)
    state = ibn_net_resnet_state(depth)
    torch.save(state, hub / file_name)
    with caplog.at_level(logging.WARNING):
        model = _build(DEPTH=f"{depth}x", WITH_IBN=True, FEAT_DIM=512 * (4 if depth >= 50 else 1))
    _assert_loaded_exactly(model, state)
    assert not [r for r in caplog.records if "mismatches" in r.getMessage()]


def test_torchvision_file_loads_from_the_hub_cache_by_its_name(hub):
    torch.manual_seed(0)
    state = torchvision.models.resnet50().state_dict()
    torch.save(state, hub / "resnet50-0676ba61.pth")
    _assert_loaded_exactly(_build(DEPTH="50x"), state)


def test_fast_reid_older_torchvision_file_is_found_by_architecture(hub):
    """fast-reid names torchvision's first ResNet-18 release (``resnet18-5c106cde.pth``)."""
    torch.manual_seed(0)
    state = torchvision.models.resnet18().state_dict()
    torch.save(state, hub / "resnet18-5c106cde.pth")
    _assert_loaded_exactly(_build(DEPTH="18x", FEAT_DIM=512), state)
