"""torchreid's re-id architectures (PCB, HACNN, MLFN, MuDeep, ResNet-mid): torchreid's forward contract,
features, module names and the sizes torchreid publishes."""
import logging

import pytest
import torch

from fastreid.modeling import build_model as build_fastreid_model
from fastreid.modeling.backbones import build_backbone, zoo_entry
from fastreid.modeling.backbones.hacnn import REGION_SCALE, region_grid
from fastreid.modeling.heads.pcb_head import PartAvgPool
from fastreid.torchreid.engine import CrossEntropyLoss, TripletLoss
from fastreid.torchreid.models import TorchreidModel, build_model, get_model_config, named_layers
from fastreid.torchreid.utils.model_complexity import compute_model_complexity

NUM_CLASSES = 5
# Small inputs each architecture accepts (HACNN needs multiples of 32, MuDeep of 16; PCB p6 gets 6 rows).
SMALL = {"pcb_p6": (96, 32), "pcb_p4": (64, 32), "hacnn": (64, 32), "mlfn": (64, 32), "mudeep": (64, 32),
         "resnet50mid": (64, 32)}
# Width of the eval features (PCB: 2048 per part).
FEATURE_DIM = {"pcb_p6": 6 * 2048, "pcb_p4": 4 * 2048, "hacnn": 1024, "mlfn": 1024, "mudeep": 4096,
               "resnet50mid": 3072}


def _model(name, loss="softmax", size=None):
    """torchreid's ``name`` for inputs of ``size`` (MuDeep's fc depends on it), without pretrained weights."""
    size = size or SMALL[name]
    cfg = get_model_config(name, NUM_CLASSES, loss, pretrained=False)
    cfg.INPUT.SIZE_TRAIN = list(size)
    torch.manual_seed(0)
    base = build_fastreid_model(cfg)
    return TorchreidModel(loss=loss, name=name, backbone=base.backbone, heads=base.heads, losses=list(base.losses),
                          pixel_mean=cfg.MODEL.PIXEL_MEAN, pixel_std=cfg.MODEL.PIXEL_STD)


def _compute_loss(criterion, outputs, targets):
    # torchreid's Engine.compute_loss: the mean over a list of outputs (part / branch classifiers).
    if isinstance(outputs, (list, tuple)):
        return sum(criterion(o, targets) for o in outputs) / len(outputs)
    return criterion(outputs, targets)


def _params_per_call(model, size):
    """Parameters as torchreid's ``compute_model_complexity`` counts them: each leaf module's parameters once
    per call in an eval-mode forward pass (HACNN's local Inception stages run once per region)."""
    total = []
    handles = [m.register_forward_hook(lambda m, i, o: total.append(sum(p.numel() for p in m.parameters())))
               for m in model.modules() if not list(m.children())]
    model.eval()
    with torch.no_grad():
        model(torch.randn(1, 3, *size))
    for h in handles:
        h.remove()
    return sum(total)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_trains_and_extracts_features(name):
    model = _model(name)
    images, pids = torch.randn(2, 3, *SMALL[name]), torch.tensor([0, 3])
    model.train()
    logits = model(images)
    parts = logits if isinstance(logits, list) else [logits]
    assert all(p.shape == (2, NUM_CLASSES) for p in parts)
    loss = _compute_loss(CrossEntropyLoss(NUM_CLASSES), logits, pids)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert sum(g is not None and bool(g.abs().sum() > 0) for g in grads) > 0.9 * len(grads)
    model.eval()
    with torch.no_grad():
        features = model(images)
    assert features.shape == (2, FEATURE_DIM[name])
    assert model.backbone.out_channels == zoo_entry(name).option("MODEL.BACKBONE.FEAT_DIM")


@pytest.mark.parametrize("name, parts", [("pcb_p6", 6), ("pcb_p4", 4)])
def test_pcb_parts(name, parts):
    model = _model(name, loss="triplet")
    assert len(model.heads.classifier) == parts
    images = torch.randn(2, 3, *SMALL[name])
    logits, features = model.train()(images)
    assert len(logits) == parts and all(y.shape == (2, NUM_CLASSES) for y in logits)
    assert features.shape == (2, 2048 * parts)
    loss = _compute_loss(CrossEntropyLoss(NUM_CLASSES), logits, torch.tensor([0, 1]))
    (loss + TripletLoss()(features, torch.tensor([0, 1]))).backward()
    with torch.no_grad():
        f = model.eval()(images)
    # torchreid's layout: each 2048-d stripe L2-normalised, flattened channel-major (channel c, part p at c·P+p).
    stripes = f.view(2, 2048, parts)
    assert torch.allclose(stripes.norm(dim=1), torch.ones(2, parts), atol=1e-5)
    expected = torch.nn.functional.adaptive_avg_pool2d(model.backbone(images), (parts, 1)).squeeze(3)
    assert torch.allclose(stripes, torch.nn.functional.normalize(expected, dim=1), atol=1e-6)


def test_pcb_builds_through_torchreid_api():
    model = build_model("pcb_p6", NUM_CLASSES, loss="softmax", pretrained=False)
    assert model.backbone.layer4[0].conv2.stride == (1, 1)  # last stride 1
    assert len(model.train()(torch.randn(2, 3, 96, 32))) == 6


def test_hacnn_branches():
    model = _model("hacnn", loss="triplet", size=(160, 64))
    logits, features = model.train()(torch.randn(2, 3, 160, 64))
    assert [y.shape for y in logits] == [(2, NUM_CLASSES)] * 2
    assert [f.shape for f in features] == [(2, 512)] * 2
    with torch.no_grad():
        f = model.eval()(torch.randn(2, 3, 160, 64))
    assert torch.allclose(f.view(2, 2, 512).norm(dim=2), torch.ones(2, 2), atol=1e-5)
    with pytest.raises(ValueError, match="divisible by 32"):
        model(torch.randn(1, 3, 150, 64))


def test_mudeep_rejects_another_input_size():
    model = _model("mudeep").eval()
    with pytest.raises(ValueError, match="INPUT.SIZE_TRAIN"):
        model(torch.randn(1, 3, 128, 64))


@pytest.mark.parametrize("name, size, params_m, gmacs",
                         [("mlfn", (256, 128), 32.5, 2.8), ("hacnn", (160, 64), 4.5, 0.5)])
def test_published_size(name, size, params_m, gmacs):
    entry = zoo_entry(name)
    assert entry.input_size == size and entry.published == {"params_m": params_m, "gmacs": gmacs}
    model = build_model(name, 751, pretrained=False)
    assert _params_per_call(model, size) / 1e6 == pytest.approx(params_m, rel=0.01)
    # torchreid publishes GFLOPs (multiply-adds) to one decimal.
    _, flops = compute_model_complexity(model, (1, 3, *size))
    assert round(flops / 1e9, 1) == gmacs


# Keys of torchreid's state dicts (from its model definitions), each found under backbone. or heads.
TORCHREID_KEYS = {
    "pcb_p6": ["conv1.weight", "layer4.2.bn3.running_var", "conv5.layers.0.weight", "conv5.layers.1.bias",
               "classifier.5.weight", "classifier.0.bias"],
    "hacnn": ["conv.conv.weight", "inception1.0.stream4.1.bn.weight", "inception3.1.stream3.1.conv.bias",
              "ha2.soft_attn.spatial_attn.conv1.conv.weight", "ha3.soft_attn.channel_attn.conv2.bn.bias",
              "ha1.hard_attn.fc.weight", "local_conv3.stream2.2.conv.weight", "fc_global.0.weight",
              "fc_global.1.running_mean", "classifier_global.weight", "fc_local.0.weight", "classifier_local.bias"],
    "mlfn": ["conv1.bias", "bn1.weight", "feature.0.fm_conv2.weight", "feature.0.downsample.1.weight",
             "feature.15.fsm.7.weight", "feature.7.fsm.1.bias", "fc_x.0.weight", "fc_s.1.running_mean",
             "classifier.weight"],
    "mudeep": ["block1.conv2.conv.weight", "block2.stream2.1.bn.bias", "block2.stream3.conv.weight",
               "block3.stream3.2.conv.weight", "block4.stream4.4.bn.running_var", "block5.a4", "fc.0.weight",
               "fc.1.weight", "classifier.weight"],
    "resnet50mid": ["layer4.2.conv3.weight", "layer1.0.downsample.0.weight", "fc_fusion.0.weight",
                    "fc_fusion.1.running_var", "classifier.weight"],
}


@pytest.mark.parametrize("name", sorted(TORCHREID_KEYS))
def test_module_names_are_torchreids(name):
    keys = set(_model(name).state_dict())
    missing = [k for k in TORCHREID_KEYS[name] if f"backbone.{k}" not in keys and f"heads.{k}" not in keys]
    assert missing == []


def test_shapes_of_torchreid_layers():
    assert _model("mlfn").backbone.fc_s[0].weight.shape == (1024, 512, 1, 1)
    assert _model("resnet50mid").heads.fc_fusion[0].weight.shape == (1024, 4096)
    # 256 × 16 × 8 inputs at 256×128: the fc layer follows the map size, (H/16) × (W/16).
    assert _model("mudeep", size=(64, 32)).heads.fc[0].weight.shape == (4096, 256 * 4 * 2)


@pytest.mark.parametrize("name", ["build_pcb_backbone", "build_hacnn_backbone", "build_mlfn_backbone",
                                  "build_mudeep_backbone", "build_resnet_mid_backbone"])
def test_backbones_are_registered(name):
    entry = next(e for e in map(zoo_entry, SMALL) if e.option("MODEL.BACKBONE.NAME") == name)
    cfg = get_model_config(entry.name, NUM_CLASSES, pretrained=False)
    backbone = build_backbone(cfg)
    assert backbone.out_channels == cfg.MODEL.BACKBONE.FEAT_DIM


def test_hacnn_region_grid_is_affine_grid():
    translation = torch.rand(3, 2) * 2 - 1
    theta = torch.zeros(3, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = REGION_SCALE
    theta[:, :, 2] = translation
    for h, w in [(80, 32), (7, 5)]:
        expected = torch.nn.functional.affine_grid(theta, [3, 1, h, w], align_corners=False)
        assert torch.allclose(region_grid(translation, h, w), expected, atol=1e-6)


@pytest.mark.parametrize("rows", [4, 7, 16])
def test_part_pooling_is_adaptive_pooling(rows):
    x = torch.randn(2, 3, rows, 5)
    for parts in (4, 6):
        expected = torch.nn.functional.adaptive_avg_pool2d(x, (parts, 1))
        assert torch.allclose(PartAvgPool(parts)(x), expected, atol=1e-6)


# torchreid's top-level layers (its models' named_children), which its staged_lr and open_layers name.
TORCHREID_LAYERS = {
    "pcb_p4": {"conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "parts_avgpool", "dropout",
               "conv5", "classifier"},
    "hacnn": {"conv", "inception1", "ha1", "inception2", "ha2", "inception3", "ha3", "fc_global", "classifier_global",
              "local_conv1", "local_conv2", "local_conv3", "fc_local", "classifier_local"},
    "mlfn": {"conv1", "bn1", "maxpool", "feature", "global_avgpool", "fc_x", "fc_s", "classifier"},
    "mudeep": {"block1", "block2", "block3", "block4", "block5", "fc", "classifier"},
    "resnet50mid": {"conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "global_avgpool",
                    "fc_fusion", "classifier"},
}


@pytest.mark.parametrize("name", sorted(TORCHREID_LAYERS))
def test_named_layers_are_torchreids(name):
    assert set(named_layers(_model(name))) == TORCHREID_LAYERS[name]


def test_mlfn_loads_torchreids_imagenet_file_by_name(tmp_path, caplog):
    """torchreid's ImageNet MLFN (trunk, fc_x, fc_s and a 1000-class classifier) fills the whole backbone."""
    reference = {k: torch.randn_like(v) if v.is_floating_point() else v
                 for k, v in _model("mlfn").backbone.state_dict().items()}
    path = tmp_path / "mlfn-9cb5a267.pth.tar"
    torch.save({**reference, "classifier.weight": torch.zeros(1000, 1024), "classifier.bias": torch.zeros(1000)},
               path)
    cfg = get_model_config("mlfn", NUM_CLASSES, pretrained=True)
    cfg.MODEL.BACKBONE.PRETRAIN_PATH = str(path)
    with caplog.at_level(logging.WARNING):
        backbone = build_backbone(cfg)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    loaded = backbone.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in reference.items())
