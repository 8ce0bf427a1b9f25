"""The timm and torchvision adapters, the fast-reid builder names over them, ShuffleNet v1 and ResNet-IBN-b.

Every zoo name these modules register builds at a small input and trains a step; the big networks only in the
slow run (``-m slow``). No weights are downloaded: pretrained loading is tested with files generated here.
"""
import os

import huggingface_hub
import pytest
import timm
import torch
import torchvision
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from fastreid.config import get_cfg
from fastreid.modeling.backbones import build_backbone, model_zoo
from fastreid.modeling.backbones.lightweight import NASNetAMobile
from fastreid.modeling.backbones.shufflenet import ShuffleNet, channel_shuffle
from fastreid.modeling.backbones.timm_adapter import TimmBackbone
from fastreid.modeling.backbones.torchvision_adapter import TorchvisionBackbone
from fastreid.modeling.pretrained import PretrainedWeightsNotFound

_BUILDERS = {
    "build_timm_backbone", "build_torchvision_backbone", "build_shufflenet_backbone", "build_mobilenetv2_backbone",
    "build_mobilenetv3_backbone", "build_shufflenetv2_backbone", "build_regnet_backbone", "build_effnet_backbone",
    "build_resnet_ibn_b_backbone", "build_nasnetamobile_backbone", "build_torchreid_mobilenetv2_backbone",
}
_ENTRIES = {e.name: e for e in model_zoo()
            if e.option("MODEL.BACKBONE.NAME") in _BUILDERS or e.name == "resnet50_ibn_a"}
# Small enough to build and train a step in about a second each; the others run in the slow sweep.
_FAST = {"shufflenet", "squeezenet1_1", "squeezenet1_0_fc512", "shufflenet_v2_x0_5", "mobilenetv2_x1_0",
         "mobilenetv3_small", "efficientnet_b0", "regnetx_200mf", "se_resnet50", "resnet50_ibn_b", "xception"}
# The valid-padding Inception networks need at least this input (W 64 collapses to nothing before stage 4).
_INPUT = {"inceptionv4": (160, 80), "inceptionresnetv2": (160, 80)}


def _cfg(*options, **backbone):
    cfg = get_cfg()
    cfg.merge_from_list(list(options))
    cfg.MODEL.BACKBONE.PRETRAIN = False
    for key, value in backbone.items():
        cfg.MODEL.BACKBONE[key] = value
    return cfg


def test_every_torchreid_name_of_the_issue_is_registered():
    wanted = {
        "densenet121", "densenet161", "densenet169", "densenet201", "densenet121_fc512", "inceptionv4",
        "inceptionresnetv2", "xception", "mobilenetv2_x1_0", "mobilenetv2_x1_4", "shufflenet", "shufflenet_v2_x0_5",
        "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "squeezenet1_0", "squeezenet1_1",
        "squeezenet1_0_fc512", "se_resnet50", "se_resnet101", "se_resnet50_fc512", "se_resnext50_32x4d",
        "se_resnext101_32x4d", "senet154", "resnext101_32x8d", "resnet50_ibn_a", "resnet50_ibn_b", "nasnsetmobile",
    }
    assert wanted <= set(_ENTRIES)
    assert {f"efficientnet_b{i}" for i in range(8)} | {"mobilenetv3_large", "regnety_800mf"} <= set(_ENTRIES)


@pytest.mark.parametrize(
    "name", [n if n in _FAST else pytest.param(n, marks=pytest.mark.slow) for n in _ENTRIES]
)
def test_zoo_entry_builds_trains_and_reports_channels(name):
    entry = _ENTRIES[name]
    backbone = build_backbone(_cfg(*entry.options)).train()
    x = torch.randn(2, 3, *_INPUT.get(name, (64, 32)))
    out = backbone(x)
    assert out.dim() == 4 and out.shape[1] == backbone.out_channels == entry.option("MODEL.BACKBONE.FEAT_DIM")
    out.mean().backward()
    assert all(p.grad is not None for p in backbone.parameters() if p.requires_grad)


@pytest.mark.parametrize(
    "options,channels",
    [
        (("MODEL.BACKBONE.NAME", "build_mobilenetv2_backbone", "MODEL.BACKBONE.DEPTH", "0.1x"), 1280),
        (("MODEL.BACKBONE.NAME", "build_mobilenetv3_backbone", "MODEL.BACKBONE.DEPTH", "Small"), 1024),
        (("MODEL.BACKBONE.NAME", "build_regnet_backbone", "MODEL.BACKBONE.DEPTH", "200y"), 368),
        (("MODEL.BACKBONE.NAME", "build_timm_backbone", "MODEL.BACKBONE.ARCH", "regnetx_002"), 368),
        (("MODEL.BACKBONE.NAME", "build_torchvision_backbone", "MODEL.BACKBONE.ARCH", "shufflenet_v2_x0_5"), 1024),
        (("MODEL.BACKBONE.NAME", "build_shufflenet_backbone", "MODEL.BACKBONE.DEPTH", "g1"), 576),
    ],
)
def test_last_stride_one_doubles_the_map(options, channels):
    maps = {}
    for stride in (2, 1):
        backbone = build_backbone(_cfg(*options, LAST_STRIDE=stride))
        maps[stride] = backbone(torch.randn(2, 3, 64, 32)).shape
        assert maps[stride][1] == backbone.out_channels == channels
    assert maps[1][-2:] == (2 * maps[2][-2], 2 * maps[2][-1])


def test_adapters_report_the_stride():
    assert TimmBackbone("regnetx_002").out_stride == 32
    assert TimmBackbone("regnetx_002", last_stride=1).out_stride == 16
    assert TorchvisionBackbone("squeezenet1_1").out_stride == 16
    assert TorchvisionBackbone("squeezenet1_1", last_stride=1).out_stride == 8


def test_last_stride_one_where_the_model_does_not_allow_it():
    # A vision transformer's only downsampling is its patch embedding, sized for a fixed input.
    with pytest.raises(ValueError, match="LAST_STRIDE 1 is not possible for 'vit_tiny_patch16_224'"):
        TimmBackbone("vit_tiny_patch16_224", last_stride=1)
    with pytest.raises(ValueError, match="must be 1 or 2"):
        TimmBackbone("regnetx_002", last_stride=4)


def test_unknown_names_fail_with_close_matches():
    with pytest.raises(KeyError, match=r"Unknown timm model 'legacy_seresnet5'.*legacy_seresnet50"):
        build_backbone(_cfg(NAME="build_timm_backbone", ARCH="legacy_seresnet5"))
    with pytest.raises(KeyError, match=r"Unknown torchvision model 'densenet12'.*densenet121"):
        build_backbone(_cfg(NAME="build_torchvision_backbone", ARCH="densenet12"))
    with pytest.raises(ValueError, match="MODEL.BACKBONE.ARCH"):
        build_backbone(_cfg(NAME="build_timm_backbone"))
    with pytest.raises(KeyError, match="'2.5x' is not a variant"):
        build_backbone(_cfg(NAME="build_shufflenetv2_backbone", DEPTH="2.5x"))


def test_torchvision_trunk_ends_where_the_classifier_starts():
    # DenseNet's map is taken after torchvision's final ReLU (as torchreid pools it), so it is non-negative.
    densenet = TorchvisionBackbone("densenet121")
    assert densenet(torch.randn(2, 3, 64, 32)).min() >= 0
    assert not any(k.startswith("body.classifier") for k in densenet.state_dict())
    with pytest.raises(ValueError, match="no feature map"):
        TorchvisionBackbone("vit_b_32")


def test_norm_option_replaces_batchnorm():
    backbone = build_backbone(_cfg(NAME="build_regnet_backbone", DEPTH="200x", NORM="FrozenBN"))
    assert not any(type(m) is nn.BatchNorm2d for m in backbone.modules())
    assert any(isinstance(m, FrozenBatchNorm2d) for m in backbone.modules())
    assert backbone(torch.randn(2, 3, 64, 32)).shape[1] == 368
    # The torchvision trunk is a torch.fx graph module, which looks its layers up when it runs.
    backbone = build_backbone(_cfg(NAME="build_shufflenetv2_backbone", DEPTH="0.5x", NORM="FrozenBN"))
    assert not any(type(m) is nn.BatchNorm2d for m in backbone.modules())
    x = torch.randn(2, 3, 64, 32)
    assert backbone(x).abs().sum() > 0
    getattr(backbone.body.conv5, "1").bias.fill_(-1e4)  # the replaced norm is the one the trunk runs (then ReLU)
    assert backbone(x).abs().sum() == 0


def test_pretrain_path_loads_library_layout(tmp_path):
    torch.manual_seed(0)
    full = timm.create_model("regnetx_002")
    timm_file = tmp_path / "regnetx_002.pth"
    torch.save(full.state_dict(), timm_file)
    backbone = build_backbone(_cfg(NAME="build_regnet_backbone", DEPTH="200x", PRETRAIN=True,
                                   PRETRAIN_PATH=str(timm_file)))
    key = "s4.b1.conv3.conv.weight"
    assert torch.equal(backbone.state_dict()[f"body.{key}"], full.state_dict()[key])

    tv = torchvision.models.squeezenet1_1()
    tv_file = tmp_path / "squeezenet.pth"
    torch.save(tv.state_dict(), tv_file)
    backbone = build_backbone(_cfg("MODEL.BACKBONE.NAME", "build_torchvision_backbone",
                                   "MODEL.BACKBONE.ARCH", "squeezenet1_1", PRETRAIN=True, PRETRAIN_PATH=str(tv_file)))
    assert torch.equal(backbone.state_dict()["body.features.12.expand3x3.weight"],
                       tv.state_dict()["features.12.expand3x3.weight"])


def test_offline_weights_come_from_the_hub_cache_or_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    url = torchvision.models.get_model_weights("squeezenet1_1").DEFAULT.url
    name = os.path.basename(url)
    with pytest.raises(PretrainedWeightsNotFound, match=rf"'{name}'.*{tmp_path}.*PRETRAIN_PATH"):
        TorchvisionBackbone("squeezenet1_1", pretrained=True)
    with pytest.raises(PretrainedWeightsNotFound, match=r"timm/regnetx_002.*PRETRAIN_PATH"):
        TimmBackbone("regnetx_002", pretrained=True)
    # A file in the torch hub cache is read by torchvision's own weights API, without downloading.
    tv = torchvision.models.squeezenet1_1()
    os.makedirs(tmp_path / "hub" / "checkpoints")
    torch.save(tv.state_dict(), tmp_path / "hub" / "checkpoints" / name)
    backbone = TorchvisionBackbone("squeezenet1_1", pretrained=True)
    assert torch.equal(backbone.state_dict()["body.features.0.weight"], tv.state_dict()["features.0.weight"])


def test_shufflenet_v1_layout_and_shuffle():
    model = ShuffleNet(groups=3)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    # torchreid's names; the first 1×1 convolution is not grouped, a stride-2 branch makes out - in channels.
    assert shapes["conv1.0.weight"] == (24, 3, 3, 3)
    assert shapes["stage2.0.conv1.weight"] == (60, 24, 1, 1)
    assert shapes["stage2.0.conv3.weight"] == (216, 20, 1, 1)
    assert shapes["stage4.3.bn3.running_mean"] == (960,)
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]


def test_resnet_ibn_b_layout():
    backbone = build_backbone(_cfg(NAME="build_resnet_ibn_b_backbone", DEPTH="50x", STEM_POOL="padded"))
    keys = set(backbone.state_dict())
    assert isinstance(backbone.bn1, nn.InstanceNorm2d)
    assert {"layer1.2.IN.weight", "layer2.3.IN.weight"} <= keys
    assert not any(".IN." in k for k in keys if k.startswith(("layer3", "layer4")))
    with pytest.raises(ValueError, match="WITH_IBN False"):
        build_backbone(_cfg(NAME="build_resnet_ibn_b_backbone", WITH_IBN=True))


@pytest.mark.slow
def test_nasnet_mobile_matches_the_published_size_and_allows_last_stride_one():
    # Published: 5.3M parameters with the 1056→1000 classifier (1.06M).
    model = NASNetAMobile()
    assert abs(sum(p.numel() for p in model.parameters()) - 4.233e6) < 0.01e6
    assert {"conv0.conv.weight", "cell_stem_1.conv_1x1.conv.weight", "reduction_cell_1.conv_1x1.conv.weight",
            "cell_11.comb_iter_4_left.separable_1.depthwise_conv2d.weight"} <= set(model.state_dict())
    assert NASNetAMobile(last_stride=1)(torch.randn(2, 3, 64, 32)).shape == (2, 1056, 4, 2)
