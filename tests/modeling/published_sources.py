"""Published backbone files of fast-reid, pycls and torchreid, re-stated as their frameworks name the layers.

Shared by the tests of the checkpoint layouts (``test_published_weight_layouts.py``: ImageNet files,
``test_fast_reid_backbone_checkpoints.py``: fast-reid reid checkpoints). Each source network is a small
re-statement of the published network from its description, with the BatchNorm eps of its source (fast-reid's
MobileNetV3 and pycls's EfficientNet: 1e-5 where torchvision uses 1e-3), so that loaded weights must give its
features to 1e-5.
"""
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from fastreid.config import get_cfg

FAST_REID_BN_EPS = 1e-5  # fast-reid's get_norm("BN") and pycls's BN.EPS

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
    """fast-reid's MobileNetV3: torchvision's ``features`` (its files are torchvision's), then ``conv``; BatchNorm
    eps ``eps`` (fast-reid's; None keeps torchvision's 1e-3, as torchvision's own network runs its files)."""

    def __init__(self, arch: str, last_channel: int, eps: Optional[float] = FAST_REID_BN_EPS) -> None:
        super().__init__()
        import torchvision

        self.features = torchvision.models.get_model(arch).features
        if eps is not None:
            for m in self.features.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eps = eps
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
    """pycls's EfficientNet (EN-B*_dds_8gpu.yaml; default B0): ``stem``, ``s1`` … ``s7``, ``head`` (conv, conv_bn,
    fc). pycls's BatchNorm eps is 1e-5 at every size (``nn.BatchNorm2d``'s)."""

    EXP_RATIOS, KERNELS, STRIDES = (1, 6, 6, 6, 6, 6, 6), (3, 3, 5, 3, 5, 5, 3), (1, 2, 2, 2, 1, 2, 1)
    B0 = dict(stem_w=32, depths=(1, 2, 2, 3, 3, 4, 1), widths=(16, 24, 40, 80, 112, 192, 320), head_w=1280)
    B5 = dict(stem_w=48, depths=(3, 5, 5, 7, 7, 9, 3), widths=(24, 40, 64, 128, 176, 304, 512), head_w=2048)

    def __init__(self, stem_w: int = 32, depths: Sequence[int] = B0["depths"], widths: Sequence[int] = B0["widths"],
                 head_w: int = 1280) -> None:
        super().__init__()
        self.stem = Chain(conv=nn.Conv2d(3, stem_w, 3, 2, 1, bias=False), bn=nn.BatchNorm2d(stem_w),
                          swish=nn.SiLU())
        w_in = stem_w
        for i, (d, w, e, k, s) in enumerate(zip(depths, widths, self.EXP_RATIOS, self.KERNELS, self.STRIDES),
                                            start=1):
            blocks = {f"b{j + 1}": PyclsMBConv(w_in if j == 0 else w, e, k, s if j == 0 else 1, w)
                      for j in range(d)}
            self.add_module(f"s{i}", Chain(**blocks))
            w_in = w
        self.head = Chain(conv=nn.Conv2d(w_in, head_w, 1, bias=False), conv_bn=nn.BatchNorm2d(head_w),
                          conv_swish=nn.SiLU())
        self.head.fc = nn.Linear(head_w, 1000)  # after the map: not run by forward

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
    """``ours`` and ``source`` (eval mode) give the same map of random images to 1e-5 relative (a BatchNorm eps of
    1e-3 instead of 1e-5 changes it by about 1e-3)."""
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = source.eval()(x)
        actual = ours.eval()(x)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


def pycls_file(model: nn.Module) -> dict:
    """``model``'s weights as pycls saves them."""
    return {"epoch": 99, "model_state": model.state_dict(), "optimizer_state": {}, "cfg": "MODEL: ..."}


def bare_file(model: nn.Module) -> dict:
    return model.state_dict()


class PublishedCase(NamedTuple):
    """One published file: how to make its network and file, and where fastreid loads it.

    Attributes:
        id: the test id.
        framework: "fast-reid" (fast-reid's own network; its RegNet and EfficientNet are pycls's, "pycls") or
            "torchreid".
        make_source: builds the source network (random weights).
        file_of: the ImageNet file of a source network.
        builder: fastreid's (MODEL.BACKBONE.NAME, DEPTH) for the file.
        zoo_name: the torchreid-API name of the same network, or None (another case covers the layout).
        left_out: the file's keys no backbone has (ImageNet classifier).
        zoo_source: the source network as the zoo name runs the file (its BatchNorm eps), when not ``make_source``.
        slow: too big for the fast test loop.
    """

    id: str
    framework: str
    make_source: Callable[[], nn.Module]
    file_of: Callable[[nn.Module], dict]
    builder: Tuple[str, str]
    zoo_name: Optional[str] = None
    left_out: Tuple[str, ...] = ()
    zoo_source: Optional[Callable[[], nn.Module]] = None
    slow: bool = False


_CLASSIFIER, _PYCLS_FC = ("classifier.weight", "classifier.bias"), ("head.fc.weight", "head.fc.bias")
_REGNET_200MF = ((1, 1, 4, 7), (24, 56, 152, 368), 8)

CASES = [
    PublishedCase("fast-reid MobileNetV2 1.0x", "fast-reid", FastReidMobileNetV2, bare_file,
                  ("build_mobilenetv2_backbone", "1.0x"), left_out=_CLASSIFIER),
    PublishedCase("fast-reid MobileNetV3 Large", "fast-reid", lambda: FastReidMobileNetV3("mobilenet_v3_large", 1280),
                  bare_file, ("build_mobilenetv3_backbone", "Large"), "mobilenetv3_large",
                  zoo_source=lambda: FastReidMobileNetV3("mobilenet_v3_large", 1280, eps=None)),
    PublishedCase("fast-reid MobileNetV3 Small", "fast-reid", lambda: FastReidMobileNetV3("mobilenet_v3_small", 1024),
                  bare_file, ("build_mobilenetv3_backbone", "Small")),
    PublishedCase("pycls RegNetX-200MF", "pycls", lambda: PyclsRegNet(*_REGNET_200MF), pycls_file,
                  ("build_regnet_backbone", "200x"), "regnetx_200mf", _PYCLS_FC),
    PublishedCase("pycls RegNetY-200MF", "pycls", lambda: PyclsRegNet(*_REGNET_200MF, se_r=0.25), pycls_file,
                  ("build_regnet_backbone", "200y"), left_out=_PYCLS_FC),
    PublishedCase("pycls EfficientNet-B0", "pycls", PyclsEffNet, pycls_file, ("build_effnet_backbone", "b0"),
                  "efficientnet_b0", _PYCLS_FC),
    PublishedCase("pycls EfficientNet-B5", "pycls", lambda: PyclsEffNet(**PyclsEffNet.B5), pycls_file,
                  ("build_effnet_backbone", "b5"), left_out=_PYCLS_FC, slow=True),
    PublishedCase("torchreid MobileNetV2 x1.0", "torchreid", lambda: TorchreidMobileNetV2Source(1.0), bare_file,
                  ("build_torchreid_mobilenetv2_backbone", "1.0x"), "mobilenetv2_x1_0", _CLASSIFIER),
    PublishedCase("torchreid MobileNetV2 x1.4", "torchreid", lambda: TorchreidMobileNetV2Source(1.4), bare_file,
                  ("build_torchreid_mobilenetv2_backbone", "1.4x"), "mobilenetv2_x1_4", _CLASSIFIER),
]
"""Every published file under test; fast-reid's reid checkpoints hold the "fast-reid" and "pycls" networks."""


