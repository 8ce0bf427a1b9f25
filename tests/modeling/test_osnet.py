"""OSNet, OSNet-IBN and OSNet-AIN: the backbone contract, torchreid's key names and features, published sizes,
ImageNet weights by name.

The oracle fixtures (tests/fixtures/reference/torchreid/osnet*.pt) hold torchreid 0.2.5's state-dict keys and
eval-mode features for the weights of the formula in weights.py next to them (made by
tools/dev/make_torchreid_fixtures.py with these architecture names).
"""
import logging
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from fastreid.config import get_cfg
from fastreid.modeling import build_backbone
from fastreid.modeling.backbones import model_zoo, zoo_entry
from fastreid.modeling.pretrained import OFFLINE_ENV
from fastreid.torchreid.models import TorchreidModel, build_model, named_layers
from fastreid.torchreid.utils import load_pretrained_weights
from fastreid.utils.checkpoint import Checkpointer

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "reference" / "torchreid"
WIDTHS = ("x1_0", "x0_75", "x0_5", "x0_25")
NAMES = tuple(f"osnet_{w}" for w in WIDTHS) + ("osnet_ibn_x1_0",) + tuple(f"osnet_ain_{w}" for w in WIDTHS)
CHANNELS = {"x1_0": 512, "x0_75": 384, "x0_5": 256, "x0_25": 128}
IMAGENET_MEAN = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)

formula = SimpleNamespace(**runpy.run_path(str(FIXTURES / "weights.py")))


def _reference(name):
    return torch.load(FIXTURES / f"{name}.pt", weights_only=True)


def _backbone_cfg(name="build_osnet_backbone", depth="x1_0", **backbone):
    cfg = get_cfg()
    cfg.MODEL.BACKBONE.NAME = name
    cfg.MODEL.BACKBONE.DEPTH = depth
    cfg.MODEL.BACKBONE.PRETRAIN = False
    cfg.MODEL.BACKBONE.FEAT_DIM = CHANNELS.get(depth, 512)
    for key, value in backbone.items():
        cfg.MODEL.BACKBONE[key] = value
    return cfg


def _torchreid_keys(model):
    """``model``'s state-dict keys as torchreid's flat OSNet names them (without ``backbone.``/``heads.``)."""
    return {k.split(".", 1)[1]: v for k, v in model.state_dict().items()}


def _torchreid_state_dict(model, keys, classes=None):
    """The formula's weights under torchreid's ``keys``, shaped as the model's tensors of the same names
    (``classes`` rows of classifier, e.g. ImageNet's 1000)."""
    tensors = _torchreid_keys(model)
    shapes = {k: tuple(tensors[k].shape) for k in keys}
    if classes is not None:
        shapes["classifier.weight"] = (classes, shapes["classifier.weight"][1])
        shapes["classifier.bias"] = (classes,)
    return formula.deterministic_state_dict((k, shapes[k], tensors[k].dtype) for k in keys)


def _torchreid_input(size=(128, 64)):
    """The formula's batch, normalised as torchreid's transforms do (``TorchreidModel`` takes it unchanged)."""
    return (formula.input_batch(size=size) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD


def _assert_matches(out, ref):
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _conv_linear_macs(model, size):
    """Mult-adds of the convolutions and linear layers of one image's forward pass (the OSNet paper's count)."""
    total = [0]

    def count(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total[0] += output.numel() * module.in_channels // module.groups * k
        else:
            total[0] += module.in_features * module.out_features

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, *size))
    for hook in hooks:
        hook.remove()
    return total[0]


def test_every_osnet_name_is_in_the_zoo():
    names = [entry.name for entry in model_zoo()]
    assert set(NAMES) <= set(names)
    assert zoo_entry("osnet_ibn_x1_0").option("MODEL.BACKBONE.WITH_IBN") is True
    assert zoo_entry("osnet_ain_x0_5").option("MODEL.BACKBONE.NAME") == "build_osnet_ain_backbone"


@pytest.mark.parametrize("builder", ["build_osnet_backbone", "build_osnet_ain_backbone"])
@pytest.mark.parametrize("depth", WIDTHS)
def test_backbone_contract_with_fast_reid_config(builder, depth):
    backbone = build_backbone(_backbone_cfg(builder, depth))
    assert backbone.out_channels == CHANNELS[depth]
    assert backbone(torch.randn(2, 3, 64, 32)).shape == (2, CHANNELS[depth], 4, 2)


def test_with_ibn_puts_instance_norm_in_stem_and_first_stage():
    backbone = build_backbone(_backbone_cfg(depth="x0_25", WITH_IBN=True))
    assert isinstance(backbone.conv1.bn, nn.InstanceNorm2d)
    assert all(isinstance(backbone.conv2[i].IN, nn.InstanceNorm2d) for i in (0, 1))
    assert backbone.conv3[0].IN is None and isinstance(backbone.conv2[2][0].bn, nn.BatchNorm2d)
    plain = build_backbone(_backbone_cfg(depth="x0_25"))
    assert isinstance(plain.conv1.bn, nn.BatchNorm2d) and plain.conv2[0].IN is None


def test_ain_places_instance_norm_inside_the_searched_blocks():
    backbone = build_backbone(_backbone_cfg("build_osnet_ain_backbone", "x0_25"))
    assert isinstance(backbone.conv1.bn, nn.InstanceNorm2d)
    inside = [[block.IN is not None for block in stage] for stage in (backbone.conv2, backbone.conv3, backbone.conv4)]
    assert inside == [[True, True], [False, True], [True, False]]
    assert backbone.conv2[0].conv3.bn is None and backbone.conv3[0].conv3.bn is not None
    assert [len(stream.layers) for stream in backbone.conv2[0].conv2] == [1, 2, 3, 4]


def test_unknown_width_is_a_clear_error():
    with pytest.raises(KeyError, match=r"MODEL.BACKBONE.DEPTH '50x' is not an OSNet width.*x0_25"):
        build_backbone(_backbone_cfg(depth="50x"))


@pytest.mark.parametrize("name", NAMES)
def test_model_trains_and_extracts_features_at_64x32(name):
    torch.manual_seed(0)
    model = build_model(name, 8, loss="triplet", pretrained=False)
    assert isinstance(model, TorchreidModel)
    logits, features = model.train()(torch.randn(2, 3, 64, 32))
    assert logits.shape == (2, 8) and features.shape == (2, 512)
    logits.logsumexp(1).sum().backward()
    assert model.backbone.conv1.conv.weight.grad.abs().sum() > 0
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 64, 32)).shape == (2, 512)
        assert model(torch.randn(2, 3, 64, 32), return_featuremaps=True).shape[1:] == (model.backbone.out_channels,
                                                                                       4, 2)


@pytest.mark.parametrize("name", NAMES)
def test_layers_have_torchreids_names(name):
    model = build_model(name, 4, pretrained=False)
    expected = ["conv1", "maxpool", "conv2", "conv3", "conv4", "conv5", "global_avgpool", "fc", "classifier"]
    if "ain" in name:
        expected[3:3] = ["pool2"]
        expected[5:5] = ["pool3"]
    assert list(named_layers(model)) == expected
    assert model.fc is model.heads.fc and model.conv5 is model.backbone.conv5


@pytest.mark.parametrize("name", [n for n in NAMES if zoo_entry(n).published])
def test_size_matches_published_figures(name):
    published = zoo_entry(name).published
    model = build_model(name, 0, pretrained=False)
    params = sum(p.numel() for key, p in model.named_parameters() if not key.startswith("heads.classifier"))
    # torchreid publishes test-time parameters to 0.1 M; the OSNet paper gives mult-adds to 0.1 M (4 decimals in
    # G), torchreid's table to 0.01 G.
    assert round(params / 1e6, 1) == published["params_m"]
    decimals = len(str(published["gmacs"]).split(".")[1])
    assert round(_conv_linear_macs(model, (256, 128)) / 1e9, decimals) == published["gmacs"]


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_keys_are_torchreids(name):
    model = build_model(name, 5, pretrained=False)
    assert sorted(_torchreid_keys(model)) == sorted(_reference(name)["state_dict_keys"])


@pytest.mark.parametrize("name", NAMES)
def test_torchreid_checkpoint_gives_torchreid_features(name, tmp_path, caplog):
    """torchreid's engine file (``module.`` keys, metadata) through fastreid's Checkpointer."""
    reference = _reference(name)
    model = build_model(name, reference["num_classes"], pretrained=False)
    weights = _torchreid_state_dict(model, reference["state_dict_keys"])
    path = tmp_path / "model.pth.tar-3"
    torch.save({"state_dict": {f"module.{k}": v for k, v in weights.items()}, "epoch": 3, "rank1": 0.5}, path)
    with caplog.at_level(logging.INFO):
        extra = Checkpointer(model, save_to_disk=False).load(str(path), checkpointables=[])
    assert _warnings(caplog) == [] and extra["torchreid_epoch"] == 3
    with torch.no_grad():
        features = model.eval()(_torchreid_input(tuple(reference["input_size"][2:])))
        logits = model.heads.classifier(features)
    _assert_matches(features, reference["features"])
    _assert_matches(logits, reference["logits"])


@pytest.mark.parametrize("name", ["osnet_x1_0", "osnet_ain_x1_0"])
def test_torchreid_api_loads_a_bare_state_dict(name, tmp_path):
    """torchreid's ``load_pretrained_weights`` on a model-zoo file (bare state dict)."""
    reference = _reference(name)
    model = build_model(name, reference["num_classes"], pretrained=False)
    path = tmp_path / f"{name}_market.pth"
    torch.save(_torchreid_state_dict(model, reference["state_dict_keys"]), path)
    loaded, discarded = load_pretrained_weights(model, str(path))
    assert discarded == [] and len(loaded) == len(reference["state_dict_keys"])
    with torch.no_grad():
        _assert_matches(model.eval()(_torchreid_input()), reference["features"])


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setenv(OFFLINE_ENV, "1")
    (tmp_path / "checkpoints").mkdir()
    return tmp_path / "checkpoints"


@pytest.mark.parametrize("name, builder, options", [
    ("osnet_x1_0", "build_osnet_backbone", {}),
    ("osnet_ibn_x1_0", "build_osnet_backbone", {"WITH_IBN": True}),
    ("osnet_ain_x0_25", "build_osnet_ain_backbone", {"depth": "x0_25"}),
])
def test_imagenet_file_loads_by_name_from_hub_cache(hub, caplog, name, builder, options):
    """torchreid's ``<name>_imagenet.pth`` (its ImageNet fc and 1000-way classifier included) fills the whole
    backbone silently."""
    keys = _reference(name)["state_dict_keys"]
    imagenet = _torchreid_state_dict(build_model(name, 5, pretrained=False), keys, classes=1000)
    torch.save(imagenet, hub / f"{name}_imagenet.pth")
    cfg = _backbone_cfg(builder, **options)
    cfg.MODEL.BACKBONE.PRETRAIN = True
    with caplog.at_level(logging.INFO):
        backbone = build_backbone(cfg)
    assert _warnings(caplog) == []
    own = backbone.state_dict()
    assert set(own) == {k for k in keys if not k.startswith(("fc.", "classifier."))}
    assert all(torch.equal(v, imagenet[k]) for k, v in own.items())


def test_missing_imagenet_file_names_the_file_to_place(hub):
    cfg = _backbone_cfg(WITH_IBN=True)
    cfg.MODEL.BACKBONE.PRETRAIN = True
    with pytest.raises(FileNotFoundError, match=r"osnet_ibn_x1_0_imagenet\.pth"):
        build_backbone(cfg)
