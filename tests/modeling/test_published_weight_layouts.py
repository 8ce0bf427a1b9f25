"""fast-reid's, pycls's and torchreid's published backbone files load by name into fastreid's networks.

Each file is made here in its framework's key layout: a small re-statement of the source network (fast-reid's
MobileNetV2 and V3, pycls's RegNet and EfficientNet, torchreid's MobileNetV2) built from its published
description, with random weights and random BatchNorm statistics, saved as that framework saves it. The file must
load through MODEL.BACKBONE.PRETRAIN_PATH and the torchreid API with every tensor used (only the ImageNet
classifier left out) and give the source network's features: a key mapped onto the wrong layer of the same shape
changes them.
"""
from typing import List, Sequence, Tuple

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from fastreid.config import get_cfg
from fastreid.modeling.backbones import build_backbone
from fastreid.modeling.pretrained import load_pretrained_weights
from fastreid.torchreid.models import build_model
from fastreid.torchreid.utils.torchtools import load_pretrained_weights as torchreid_load_pretrained_weights
from fastreid.utils.checkpoint_layouts import to_fastreid_layout

# --- the source networks, as their frameworks name their layers --------------------------------------------

MOBILENETV2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                      (6, 320, 1, 1))


def conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, act: nn.Module = None) -> List:
    layers = [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
    return layers + ([act] if act is not None else [])


class Residual(nn.Module):
    """``conv(x)``, plus ``x`` when shapes allow (a MobileNetV2 block as fast-reid names it)."""

    def __init__(self, conv: nn.Module, residual: bool) -> None:
        super().__init__()
        self.conv, self.residual = conv, residual

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class FastReidMobileNetV2(nn.Module):
    """fast-reid's MobileNetV2 1.0× (tonylins' layout): ``features.N.conv.M``, ``conv``, ImageNet ``classifier``."""

    def __init__(self) -> None:
        super().__init__()
        c_in, features = 32, [nn.Sequential(*conv_bn(3, 32, 3, 2, act=nn.ReLU6()))]
        for t, c, n, s in MOBILENETV2_STAGES:
            for i in range(n):
                stride, hidden = (s if i == 0 else 1), c_in * t
                layers = conv_bn(c_in, hidden, 1, act=nn.ReLU6()) if t != 1 else []
                layers += conv_bn(hidden, hidden, 3, stride, hidden, act=nn.ReLU6()) + conv_bn(hidden, c, 1)
                features.append(Residual(nn.Sequential(*layers), stride == 1 and c_in == c))
                c_in = c
        self.features = nn.Sequential(*features)
        self.conv = nn.Sequential(*conv_bn(320, 1280, 1, act=nn.ReLU6()))
        self.classifier = nn.Linear(1280, 1000)

    def forward(self, x):
        return self.conv(self.features(x))


class FastReidMobileNetV3(nn.Module):
    """fast-reid's MobileNetV3: torchvision's ``features`` (its files are torchvision's), then ``conv``."""

    def __init__(self, arch: str, last_channel: int) -> None:
        super().__init__()
        import torchvision

        self.features = torchvision.models.get_model(arch).features
        width = self.features[-1][0].out_channels
        self.conv = nn.Sequential(*conv_bn(width, last_channel, 1, act=nn.ReLU6()))

    def forward(self, x):
        return self.conv(self.features(x))


class ConvBlock(nn.Module):
    """torchreid's ConvBlock: ``conv``, ``bn``, ReLU6."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv, self.bn = conv_bn(c_in, c_out, k, stride, groups)

    def forward(self, x):
        return F.relu6(self.bn(self.conv(x)))


class TorchreidBottleneck(nn.Module):
    def __init__(self, c_in: int, c_out: int, t: int, stride: int) -> None:
        super().__init__()
        mid = c_in * t
        self.residual = stride == 1 and c_in == c_out
        self.conv1 = ConvBlock(c_in, mid, 1)
        self.dwconv2 = ConvBlock(mid, mid, 3, stride, mid)
        self.conv3 = nn.Sequential(*conv_bn(mid, c_out, 1))

    def forward(self, x):
        m = self.conv3(self.dwconv2(self.conv1(x)))
        return x + m if self.residual else m


class TorchreidMobileNetV2Source(nn.Module):
    """torchreid's MobileNetV2: ``conv1``, stages ``conv2`` … ``conv8``, ``conv9``, ImageNet ``classifier``."""

    def __init__(self, width: float) -> None:
        super().__init__()
        c_in = int(32 * width)
        self.conv1 = ConvBlock(3, c_in, 3, 2)
        for index, (t, c, n, s) in enumerate(MOBILENETV2_STAGES, start=2):
            blocks = []
            for i in range(n):
                blocks.append(TorchreidBottleneck(c_in, int(c * width), t, s if i == 0 else 1))
                c_in = int(c * width)
            self.add_module(f"conv{index}", nn.Sequential(*blocks))
        self.feature_dim = int(1280 * width) if width > 1 else 1280
        self.conv9 = ConvBlock(c_in, self.feature_dim, 1)
        self.classifier = nn.Linear(self.feature_dim, 1000)

    def forward(self, x):
        for i in range(1, 10):
            x = getattr(self, f"conv{i}")(x)
        return x


class PyclsSE(nn.Module):
    def __init__(self, w: int, w_se: int, act: nn.Module) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.f_ex = nn.Sequential(nn.Conv2d(w, w_se, 1), act, nn.Conv2d(w_se, w, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.f_ex(self.avg_pool(x))


class Chain(nn.Module):
    """Runs its children in order (pycls's stems, transforms and stages)."""

    def __init__(self, **children: nn.Module) -> None:
        super().__init__()
        for name, child in children.items():
            self.add_module(name, child)

    def forward(self, x):
        for child in self.children():
            x = child(x)
        return x


class PyclsRegNetBlock(nn.Module):
    """pycls's ResBottleneckBlock (bottleneck multiplier 1): ``proj``/``bn`` and ``f.{a,b,se,c}``."""

    def __init__(self, w_in: int, w_out: int, stride: int, group_w: int, se_r: float) -> None:
        super().__init__()
        self.proj_block = w_in != w_out or stride != 1
        if self.proj_block:
            self.proj = nn.Conv2d(w_in, w_out, 1, stride, bias=False)
            self.bn = nn.BatchNorm2d(w_out)
        parts = dict(a=nn.Conv2d(w_in, w_out, 1, bias=False), a_bn=nn.BatchNorm2d(w_out), a_relu=nn.ReLU(),
                     b=nn.Conv2d(w_out, w_out, 3, stride, 1, groups=w_out // group_w, bias=False),
                     b_bn=nn.BatchNorm2d(w_out), b_relu=nn.ReLU())
        if se_r:
            parts["se"] = PyclsSE(w_out, int(round(w_in * se_r)), nn.ReLU())
        parts.update(c=nn.Conv2d(w_out, w_out, 1, bias=False), c_bn=nn.BatchNorm2d(w_out))
        self.f = Chain(**parts)

    def forward(self, x):
        skip = self.bn(self.proj(x)) if self.proj_block else x
        return F.relu(skip + self.f(x))


class PyclsRegNet(nn.Module):
    """pycls's RegNet from its per-stage depths, widths and group width: ``stem``, ``s1`` … ``s4``, ``head.fc``."""

    def __init__(self, depths: Sequence[int], widths: Sequence[int], group_w: int, se_r: float = 0.0) -> None:
        super().__init__()
        self.stem = Chain(conv=nn.Conv2d(3, 32, 3, 2, 1, bias=False), bn=nn.BatchNorm2d(32), relu=nn.ReLU())
        w_in = 32
        for i, (d, w) in enumerate(zip(depths, widths), start=1):
            blocks = {f"b{j + 1}": PyclsRegNetBlock(w_in if j == 0 else w, w, 2 if j == 0 else 1, group_w, se_r)
                      for j in range(d)}
            self.add_module(f"s{i}", Chain(**blocks))
            w_in = w
        self.head = Chain(avg_pool=nn.AdaptiveAvgPool2d(1), fc=nn.Linear(w_in, 1000))
        self.stages = len(depths)

    def forward(self, x):
        x = self.stem(x)
        for i in range(1, self.stages + 1):
            x = getattr(self, f"s{i}")(x)
        return x


class PyclsMBConv(nn.Module):
    """pycls's MBConv: [``exp``,] ``dwise``, ``se``, ``lin_proj``, each convolution with its ``_bn``."""

    def __init__(self, w_in: int, exp_r: int, k: int, stride: int, w_out: int) -> None:
        super().__init__()
        w_exp = w_in * exp_r
        self.exp = None
        if w_exp != w_in:
            self.exp, self.exp_bn = conv_bn(w_in, w_exp, 1)
        self.dwise, self.dwise_bn = conv_bn(w_exp, w_exp, k, stride, w_exp)
        self.se = PyclsSE(w_exp, int(w_in * 0.25), nn.SiLU())
        self.lin_proj, self.lin_proj_bn = conv_bn(w_exp, w_out, 1)
        self.has_skip = stride == 1 and w_in == w_out

    def forward(self, x):
        f = F.silu(self.exp_bn(self.exp(x))) if self.exp is not None else x
        f = self.se(F.silu(self.dwise_bn(self.dwise(f))))
        f = self.lin_proj_bn(self.lin_proj(f))
        return x + f if self.has_skip else f


class PyclsEffNet(nn.Module):
    """pycls's EfficientNet-B0 (EN-B0_dds_8gpu.yaml): ``stem``, ``s1`` … ``s7``, ``head`` (conv, conv_bn, fc)."""

    DEPTHS, WIDTHS = (1, 2, 2, 3, 3, 4, 1), (16, 24, 40, 80, 112, 192, 320)
    EXP_RATIOS, KERNELS, STRIDES = (1, 6, 6, 6, 6, 6, 6), (3, 3, 5, 3, 5, 5, 3), (1, 2, 2, 2, 1, 2, 1)

    def __init__(self) -> None:
        super().__init__()
        self.stem = Chain(conv=nn.Conv2d(3, 32, 3, 2, 1, bias=False), bn=nn.BatchNorm2d(32), swish=nn.SiLU())
        w_in = 32
        for i, (d, w, e, k, s) in enumerate(zip(self.DEPTHS, self.WIDTHS, self.EXP_RATIOS, self.KERNELS,
                                                self.STRIDES), start=1):
            blocks = {f"b{j + 1}": PyclsMBConv(w_in if j == 0 else w, e, k, s if j == 0 else 1, w)
                      for j in range(d)}
            self.add_module(f"s{i}", Chain(**blocks))
            w_in = w
        self.head = Chain(conv=nn.Conv2d(w_in, 1280, 1, bias=False), conv_bn=nn.BatchNorm2d(1280),
                          conv_swish=nn.SiLU())
        self.head.fc = nn.Linear(1280, 1000)  # after the map: not run by forward

    def forward(self, x):
        x = self.stem(x)
        for i in range(1, 8):
            x = getattr(self, f"s{i}")(x)
        return self.head.conv_swish(self.head.conv_bn(self.head.conv(x)))


# --- helpers ------------------------------------------------------------------------------------------------


def randomized(module: nn.Module, seed: int = 0) -> nn.Module:
    """``module`` in eval mode with seeded random weights and BatchNorm affine parameters and statistics."""
    torch.manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.reset_parameters()
        elif isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return module.eval()


def backbone_cfg(name: str, depth: str, pretrain_path: str = ""):
    cfg = get_cfg()
    cfg.MODEL.BACKBONE.NAME = name
    cfg.MODEL.BACKBONE.DEPTH = depth
    cfg.MODEL.BACKBONE.LAST_STRIDE = 2
    cfg.MODEL.BACKBONE.PRETRAIN = bool(pretrain_path)
    cfg.MODEL.BACKBONE.PRETRAIN_PATH = pretrain_path
    return cfg


def assert_same_features(ours: nn.Module, source: nn.Module, size: Tuple[int, int] = (64, 32)) -> None:
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = source(x)
        actual = ours.eval()(x)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))


# (id, source network, its file, fastreid builder and DEPTH, torchreid-API model name, file keys left out)
def _pycls_file(model: nn.Module) -> dict:
    return {"epoch": 99, "model_state": model.state_dict(), "optimizer_state": {}, "cfg": "MODEL: ..."}


CASES = [
    ("fast-reid MobileNetV2 1.0x", FastReidMobileNetV2, lambda m: m.state_dict(),
     ("build_mobilenetv2_backbone", "1.0x"), None, ("classifier.weight", "classifier.bias")),
    ("fast-reid MobileNetV3 Large", lambda: FastReidMobileNetV3("mobilenet_v3_large", 1280),
     lambda m: m.state_dict(), ("build_mobilenetv3_backbone", "Large"), "mobilenetv3_large", ()),
    ("fast-reid MobileNetV3 Small", lambda: FastReidMobileNetV3("mobilenet_v3_small", 1024),
     lambda m: m.state_dict(), ("build_mobilenetv3_backbone", "Small"), None, ()),
    ("pycls RegNetX-200MF", lambda: PyclsRegNet((1, 1, 4, 7), (24, 56, 152, 368), 8), _pycls_file,
     ("build_regnet_backbone", "200x"), "regnetx_200mf", ("head.fc.weight", "head.fc.bias")),
    ("pycls RegNetY-200MF", lambda: PyclsRegNet((1, 1, 4, 7), (24, 56, 152, 368), 8, se_r=0.25), _pycls_file,
     ("build_regnet_backbone", "200y"), None, ("head.fc.weight", "head.fc.bias")),
    ("pycls EfficientNet-B0", PyclsEffNet, _pycls_file, ("build_effnet_backbone", "b0"), "efficientnet_b0",
     ("head.fc.weight", "head.fc.bias")),
    ("torchreid MobileNetV2 x1.0", lambda: TorchreidMobileNetV2Source(1.0), lambda m: m.state_dict(),
     ("build_torchreid_mobilenetv2_backbone", "1.0x"), "mobilenetv2_x1_0", ("classifier.weight", "classifier.bias")),
    ("torchreid MobileNetV2 x1.4", lambda: TorchreidMobileNetV2Source(1.4), lambda m: m.state_dict(),
     ("build_torchreid_mobilenetv2_backbone", "1.4x"), "mobilenetv2_x1_4", ("classifier.weight", "classifier.bias")),
]


@pytest.fixture(params=CASES, ids=[c[0] for c in CASES])
def published_file(request, tmp_path):
    name, make_source, file_of, builder, zoo_name, left_out = request.param
    source = randomized(make_source())
    path = str(tmp_path / "published.pth")
    torch.save(file_of(source), path)
    return source, path, builder, zoo_name, left_out


def test_every_tensor_of_the_file_loads_into_the_matching_backbone(published_file):
    source, path, (builder, depth), _, left_out = published_file
    backbone = build_backbone(backbone_cfg(builder, depth))
    incompatible = load_pretrained_weights(backbone, path)
    assert incompatible.missing == [] and incompatible.shape_mismatch == []
    assert set(incompatible.unexpected) <= set(left_out)  # the layout may drop them before loading
    # One place in the backbone for each tensor of the file but the classifier's: none is loaded twice.
    assert len(source.state_dict()) - len(left_out) == len(backbone.state_dict())


def test_pretrain_path_gives_the_source_networks_features(published_file):
    source, path, (builder, depth), _, _ = published_file
    assert_same_features(build_backbone(backbone_cfg(builder, depth, pretrain_path=path)), source)


def test_torchreid_api_loads_the_file_into_the_named_model(published_file):
    source, path, _, zoo_name, left_out = published_file
    if zoo_name is None:
        pytest.skip("covered by the other variant of the same layout")
    model = build_model(zoo_name, num_classes=5, pretrained=False)
    loaded, discarded = torchreid_load_pretrained_weights(model, path)
    backbone_keys = {k for k in model.state_dict() if k.startswith("backbone.") and "num_batches" not in k}
    assert backbone_keys <= set(loaded)
    # torchreid's ImageNet classifier maps onto the model's (1000 classes, not 5: discarded); the others are left
    # out by the layout or discarded.
    assert set(discarded) <= {"heads.classifier.weight", "heads.classifier.bias", *left_out}
    assert_same_features(model.backbone, source)


def test_fastreid_own_files_are_not_taken_for_another_layout():
    backbone = build_backbone(backbone_cfg("build_regnet_backbone", "200y"))
    for checkpoint in (backbone.state_dict(), {"model": {"backbone." + k: v for k, v in backbone.state_dict().items()}}):
        assert to_fastreid_layout(checkpoint, set(backbone.state_dict()))[1] is None


def test_mobilenetv3_reports_fast_reids_final_channels():
    for depth, channels in (("Large", 1280), ("Small", 1024)):
        backbone = build_backbone(backbone_cfg("build_mobilenetv3_backbone", depth))
        with torch.no_grad():
            out = backbone.eval()(torch.randn(1, 3, 64, 32))
        assert backbone.out_channels == channels == out.shape[1]
