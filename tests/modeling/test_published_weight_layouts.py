"""fast-reid's, pycls's and torchreid's published backbone files load by name into fastreid's networks.

Each file is made here in its framework's key layout (the source networks of ``published_sources.py``: a small
re-statement of fast-reid's MobileNetV2 and V3, pycls's RegNet and EfficientNet, torchreid's MobileNetV2, built
from its published description with its BatchNorm eps), with random weights and random BatchNorm statistics,
saved as that framework saves it. The file must load through MODEL.BACKBONE.PRETRAIN_PATH and the torchreid API
with every tensor used (only the ImageNet classifier left out) and give the source network's features to 1e-5: a
key mapped onto the wrong layer of the same shape, or another BatchNorm eps, changes them.
"""
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from fastreid.modeling.backbones import build_backbone
from fastreid.modeling.pretrained import load_pretrained_weights
from fastreid.torchreid.models import build_model
from fastreid.torchreid.utils.torchtools import load_pretrained_weights as torchreid_load_pretrained_weights
from fastreid.utils.checkpoint_layouts import to_fastreid_layout

sys.path.insert(0, str(Path(__file__).resolve().parent))
from published_sources import CASES, assert_same_features, backbone_cfg, randomized  # noqa: E402


def _params(cases):
    return [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in cases]


@pytest.fixture(params=_params(CASES))
def published_file(request, tmp_path):
    case = request.param
    source = randomized(case.make_source())
    path = str(tmp_path / "published.pth")
    torch.save(case.file_of(source), path)
    return case, source, path


def test_every_tensor_of_the_file_loads_into_the_matching_backbone(published_file):
    case, source, path = published_file
    backbone = build_backbone(backbone_cfg(*case.builder))
    incompatible = load_pretrained_weights(backbone, path)
    assert incompatible.missing == [] and incompatible.shape_mismatch == []
    assert set(incompatible.unexpected) <= set(case.left_out)  # the layout may drop them before loading
    # One place in the backbone for each tensor of the file but the classifier's: none is loaded twice.
    assert len(source.state_dict()) - len(case.left_out) == len(backbone.state_dict())


def test_pretrain_path_gives_the_source_networks_features(published_file):
    case, source, path = published_file
    assert_same_features(build_backbone(backbone_cfg(*case.builder, pretrain_path=path)), source)


def _as_zoo_runs_it(case, source: nn.Module) -> nn.Module:
    """``source``'s weights in the network as the zoo name runs them (its own BatchNorm eps)."""
    if case.zoo_source is None:
        return source
    twin = case.zoo_source()
    twin.load_state_dict(source.state_dict())
    return twin


def test_torchreid_api_loads_the_file_into_the_named_model(published_file):
    case, source, path = published_file
    if case.zoo_name is None:
        pytest.skip("covered by the other variant of the same layout")
    model = build_model(case.zoo_name, num_classes=5, pretrained=False)
    loaded, discarded = torchreid_load_pretrained_weights(model, path)
    backbone_keys = {k for k in model.state_dict() if k.startswith("backbone.") and "num_batches" not in k}
    assert backbone_keys <= set(loaded)
    # torchreid's ImageNet classifier maps onto the model's (1000 classes, not 5: discarded); the others are left
    # out by the layout or discarded.
    assert set(discarded) <= {"heads.classifier.weight", "heads.classifier.bias", *case.left_out}
    assert_same_features(model.backbone, _as_zoo_runs_it(case, source))


def test_fastreid_own_files_are_not_taken_for_another_layout():
    backbone = build_backbone(backbone_cfg("build_regnet_backbone", "200y"))
    state = backbone.state_dict()
    for checkpoint in (state, {"model": {"backbone." + k: v for k, v in state.items()}}):
        assert to_fastreid_layout(checkpoint, set(state))[1] is None


def test_mobilenetv3_reports_fast_reids_final_channels():
    for depth, channels in (("Large", 1280), ("Small", 1024)):
        backbone = build_backbone(backbone_cfg("build_mobilenetv3_backbone", depth))
        with torch.no_grad():
            out = backbone.eval()(torch.randn(1, 3, 64, 32))
        assert backbone.out_channels == channels == out.shape[1]


@pytest.mark.parametrize("builder,fast_reid_depth,library_depth", [
    ("build_mobilenetv3_backbone", "Small", "mobilenet_v3_small"),
    ("build_effnet_backbone", "b5", "efficientnet_b5"),
])
def test_fast_reid_depths_take_fast_reids_batchnorm_and_library_names_the_librarys(builder, fast_reid_depth,
                                                                                    library_depth):
    def batchnorms(depth):
        backbone = build_backbone(backbone_cfg(builder, depth))
        return {(m.eps, m.momentum) for m in backbone.body.modules() if isinstance(m, nn.BatchNorm2d)}

    assert batchnorms(library_depth) == {(1e-3, 0.01)}  # torchvision's MobileNetV3 and EfficientNet-B5…B7
    assert batchnorms(fast_reid_depth) == {(1e-5, 0.1)}  # fast-reid's get_norm("BN"), pycls's BN.EPS / BN.MOM
