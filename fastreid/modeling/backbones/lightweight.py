"""fast-reid's builder names over the timm and torchvision adapters, and torchreid's variants built on them.

Each builder reads fast-reid's keys: MODEL.BACKBONE.DEPTH picks the variant as fast-reid spells it ("1.0x",
"Large", "800y", "b0"), LAST_STRIDE, NORM, PRETRAIN and PRETRAIN_PATH as everywhere. The networks are the
libraries' (MobileNetV2/V3, ShuffleNetV2 and EfficientNet from torchvision, RegNet from timm); MobileNetV3 ends,
as fast-reid's does, with a 1×1 convolution to 1280 (Small: 1024) channels. Without PRETRAIN_PATH the ImageNet
weights are the libraries' own; a PRETRAIN_PATH file is read by fastreid's loader, which also takes fast-reid's
and pycls's published files (fast-reid's MobileNetV2, pycls's RegNet ``*_dds_8gpu.pyth`` and EfficientNet
``EN-B*_dds_8gpu.pyth``: :mod:`fastreid.modeling.layouts.backbone_files`). torchreid's MobileNetV2 differs from
torchvision's and is built from torchvision's blocks (:class:`TorchreidMobileNetV2`). ResNet-IBN-b (torchreid's
``resnet50_ibn_b``) is fastreid's ResNet with instance norm added in the stem and after stages 1 and 2.

BatchNorm eps, decided per name so that each source's weights give that source's features:

- fast-reid's builder names with fast-reid's DEPTH spelling take fast-reid's BatchNorm (eps 1e-5, momentum 0.1),
  so a fast-reid checkpoint (MODEL.WEIGHTS) gives fast-reid's features: ``build_mobilenetv3_backbone`` "Large" /
  "Small" (fast-reid builds torchvision's MobileNetV3 with its own norm layers; torchvision: eps 1e-3, momentum
  0.01) and ``build_effnet_backbone`` "b0" … "b7" (pycls's BN.EPS 1e-5 at every size; torchvision: 1e-3 for
  B5-B7). Torchvision's ImageNet weights then run at fast-reid's eps, as they do in fast-reid.
- the model-zoo names (torchreid API: ``mobilenetv3_large`` / ``small``, ``efficientnet_b0`` … ``b7``), whose
  ImageNet weights are torchvision's, give DEPTH as torchvision names the network ("mobilenet_v3_large",
  "efficientnet_b5"), which keeps torchvision's BatchNorm settings.
- the others agree with their sources: torchvision's MobileNetV2 and ShuffleNetV2, timm's RegNet (pycls's and
  fast-reid's too) and torchreid's MobileNetV2 all use eps 1e-5. A NORM other than "BN" builds fastreid's norm
  layers, eps 1e-5.
"""
from functools import partial
from typing import Any, Callable, Dict, Mapping, Optional, Type, Union

import torch
from torch import nn

from fastreid.layers import InstanceNorm2d, get_norm
from fastreid.modeling.pretrained import init_pretrained, load_pretrained_weights, resolve_pretrained_path

from .build import BACKBONE_REGISTRY
from .resnet import Bottleneck, ResNet, build_resnet_family, parse_depth, torchreid_resnet_options
from .timm_adapter import TimmBackbone, convert_batchnorm, remove_last_downsampling, timm_backbone_kwargs
from .torchvision_adapter import TorchvisionBackbone
from .zoo import register_zoo_model

__all__ = [
    "IBNbBottleneck",
    "MobileNetV3Backbone",
    "NASNetAMobile",
    "TorchreidMobileNetV2",
    "build_effnet_backbone",
    "build_mobilenetv2_backbone",
    "build_mobilenetv3_backbone",
    "build_nasnetamobile_backbone",
    "build_regnet_backbone",
    "build_resnet_ibn_b_backbone",
    "build_shufflenetv2_backbone",
    "build_torchreid_mobilenetv2_backbone",
]

# MobileNetV2 width multipliers by DEPTH (fast-reid's, plus torchreid's 1.4×).
_MOBILENETV2_WIDTHS = {"1.4x": 1.4, "1.0x": 1.0, "0.75x": 0.75, "0.5x": 0.5, "0.35x": 0.35, "0.25x": 0.25, "0.1x": 0.1}
# MobileNetV3 by DEPTH: torchvision's network and the channels of fast-reid's final 1×1 convolution.
_MOBILENETV3 = {"large": ("mobilenet_v3_large", 1280), "small": ("mobilenet_v3_small", 1024)}
_SHUFFLENETV2 = {"0.5x": "shufflenet_v2_x0_5", "1.0x": "shufflenet_v2_x1_0", "1.5x": "shufflenet_v2_x1_5",
                 "2.0x": "shufflenet_v2_x2_0"}
_EFFNET = {f"b{i}": f"efficientnet_b{i}" for i in range(8)}
# BatchNorm of fast-reid's MobileNetV3 (fast-reid's get_norm "BN") and of pycls's EfficientNet (BN.EPS, BN.MOM),
# where torchvision's MobileNetV3 and EfficientNet-B5…B7 use eps 1e-3 and momentum 0.01.
_FAST_REID_BN = {"eps": 1e-5, "momentum": 0.1}
# RegNet sizes (Radosavovic et al. 2020): DEPTH as fast-reid spells it, mega-FLOPs at 224×224 and X or Y ("800x"
# = RegNetX-800MF, "1600y" = RegNetY-1.6GF) -> output channels of the last stage. The networks come from timm,
# whose names count 100 MF ("regnetx_008").
_REGNET_CHANNELS = {
    "200x": 368, "400x": 384, "600x": 528, "800x": 672, "1600x": 912, "3200x": 1008, "4000x": 1360, "6400x": 1624,
    "8000x": 1920, "12000x": 2240, "16000x": 2048, "32000x": 2520,
    "200y": 368, "400y": 440, "600y": 608, "800y": 768, "1600y": 888, "3200y": 1512, "4000y": 1088, "6400y": 1296,
    "8000y": 2016, "12000y": 2240, "16000y": 3024, "32000y": 3712,
}
_REGNET = {depth: f"regnet{depth[-1]}_{int(depth[:-1]) // 100:03d}" for depth in _REGNET_CHANNELS}


def _variant(cfg, table: Mapping[str, Any], builder: str, lower: bool = False) -> Any:
    depth = str(cfg.MODEL.BACKBONE.DEPTH)
    key = depth.lower() if lower else depth
    if key not in table:
        raise KeyError(f"{builder}: MODEL.BACKBONE.DEPTH '{depth}' is not a variant; expected one of {list(table)}")
    return table[key]


def _source_variant(cfg, fast_reid: Mapping[str, Any], library_arch: Callable[[Any], str], builder: str) -> tuple:
    """``(fast_reid[key], whether it is fast-reid's network)`` for MODEL.BACKBONE.DEPTH: fast-reid's spelling
    ("Large", "b5") picks fast-reid's network; the library's model name ("mobilenet_v3_large", "efficientnet_b5")
    the same network with the library's BatchNorm settings."""
    library = {library_arch(value): value for value in fast_reid.values()}
    variant = _variant(cfg, {**fast_reid, **library}, builder, lower=True)
    return variant, str(cfg.MODEL.BACKBONE.DEPTH).lower() in fast_reid


def _set_batchnorm(module: nn.Module, eps: float, momentum: float) -> nn.Module:
    """``module`` with ``eps`` and ``momentum`` in every BatchNorm layer (the statistics are kept)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eps, m.momentum = eps, momentum
    return module


# The ImageNet classifiers of the files a PRETRAIN_PATH may hold (torchvision's, timm's), which no backbone has.
_IMAGENET_CLASSIFIERS = tuple(f"{layer}.{p}" for layer in ("classifier.0", "classifier.1", "classifier.3", "fc",
                                                            "head.fc") for p in ("weight", "bias"))

Adapter = Union[TimmBackbone, TorchvisionBackbone]


def _library_backbone(cfg, adapter: Type[Adapter], arch: str, **kwargs) -> Adapter:
    """``adapter(arch, **kwargs)`` with the cfg's common options. The library loads its own ImageNet weights; a
    PRETRAIN_PATH file is loaded into the whole backbone by fastreid's loader, which reads other frameworks'
    layouts (fast-reid's, pycls's) and, for MobileNetV3, the final convolution too."""
    options = timm_backbone_kwargs(cfg)
    path = options.pop("pretrain_path")
    from_file = options["pretrained"] and bool(path)
    if from_file:
        options["pretrained"] = False
    model = adapter(arch, **options, **kwargs)
    if from_file:
        load_pretrained_weights(model, resolve_pretrained_path(path, ()), ignore_unexpected=_IMAGENET_CLASSIFIERS)
    return model


@BACKBONE_REGISTRY.register()
def build_mobilenetv2_backbone(cfg) -> TorchvisionBackbone:
    """MobileNetV2 (torchvision's, with its final 1×1 convolution to 1280 channels, 1792 at 1.4×); DEPTH is the
    width multiplier "1.0x", "1.4x", "0.75x", "0.5x", "0.35x", "0.25x" or "0.1x"."""
    width = _variant(cfg, _MOBILENETV2_WIDTHS, "build_mobilenetv2_backbone")
    extra: Dict[str, Any] = {}
    if width != 1.0:
        # fast-reid rounds the 0.1× widths to multiples of 4, the others to multiples of 8.
        extra = {"width_mult": width, "round_nearest": 4 if width == 0.1 else 8}
    return _library_backbone(cfg, TorchvisionBackbone, "mobilenet_v2", **extra)


class MobileNetV3Backbone(TorchvisionBackbone):
    """fast-reid's MobileNetV3: torchvision's features, then a 1×1 convolution, norm and ReLU6 named ``conv``
    (as in fast-reid, so its checkpoints load by name).

    Args:
        arch: "mobilenet_v3_large" or "mobilenet_v3_small".
        last_channel: output channels of the final convolution (fast-reid: 1280 Large, 1024 Small).
        norm: MODEL.BACKBONE.NORM, for torchvision's layers and the final one.
        kwargs: more arguments of :class:`TorchvisionBackbone` (last_stride, pretrained, pretrain_path).

    Attributes:
        out_channels (int): ``last_channel``.
    """

    def __init__(self, arch: str, last_channel: int, *, norm: str = "BN", **kwargs) -> None:
        super().__init__(arch, norm=norm, **kwargs)
        self.conv = nn.Sequential(nn.Conv2d(self.out_channels, last_channel, 1, bias=False),
                                  get_norm(norm, last_channel), nn.ReLU6(inplace=True))
        nn.init.kaiming_normal_(self.conv[0].weight, mode="fan_out")
        self.out_channels = last_channel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map B×3×H×W images to the B×``out_channels``×H/32×W/32 map (H/16×W/16 with last stride 1)."""
        return self.conv(super().forward(x))


@BACKBONE_REGISTRY.register()
def build_mobilenetv3_backbone(cfg) -> MobileNetV3Backbone:
    """MobileNetV3 (torchvision's features, then fast-reid's 1×1 convolution to 1280 channels, Small: 1024);
    DEPTH "Large" or "Small".

    DEPTH "Large" / "Small" builds fast-reid's network, BatchNorm eps 1e-5 (its checkpoints give its features);
    torchvision's names "mobilenet_v3_large" / "mobilenet_v3_small" keep torchvision's eps 1e-3 and momentum
    0.01 in torchvision's layers, with which its ImageNet weights were trained (the model-zoo names use them).
    """
    (arch, last_channel), fast_reid = _source_variant(cfg, _MOBILENETV3, lambda v: v[0], "build_mobilenetv3_backbone")
    model = _library_backbone(cfg, MobileNetV3Backbone, arch, last_channel=last_channel)
    return _set_batchnorm(model, **_FAST_REID_BN) if fast_reid else model


@BACKBONE_REGISTRY.register()
def build_shufflenetv2_backbone(cfg) -> TorchvisionBackbone:
    """ShuffleNetV2 (torchvision's, up to its final 1×1 convolution: 1024 channels, 2048 at 2.0×); DEPTH "0.5x",
    "1.0x", "1.5x" or "2.0x"."""
    return _library_backbone(cfg, TorchvisionBackbone, _variant(cfg, _SHUFFLENETV2, "build_shufflenetv2_backbone"))


@BACKBONE_REGISTRY.register()
def build_effnet_backbone(cfg) -> TorchvisionBackbone:
    """EfficientNet B0-B7 (torchvision's features, up to the head's 1×1 convolution: 1280 channels at B0);
    DEPTH "b0" … "b7".

    DEPTH "b0" … "b7" builds fast-reid's (pycls's) network, BatchNorm eps 1e-5 at every size; torchvision's names
    "efficientnet_b0" … "efficientnet_b7" keep torchvision's BatchNorm (B5-B7: eps 1e-3, momentum 0.01), with
    which its ImageNet weights were trained (the model-zoo names use them).
    """
    arch, fast_reid = _source_variant(cfg, _EFFNET, lambda v: v, "build_effnet_backbone")
    model = _library_backbone(cfg, TorchvisionBackbone, arch)
    return _set_batchnorm(model, **_FAST_REID_BN) if fast_reid else model


@BACKBONE_REGISTRY.register()
def build_regnet_backbone(cfg) -> TimmBackbone:
    """RegNetX / RegNetY (timm's, last stage); DEPTH "<MF>x" or "<MF>y" from "200x" to "32000y"."""
    return _library_backbone(cfg, TimmBackbone, _variant(cfg, _REGNET, "build_regnet_backbone", lower=True))


# MobileNetV2's inverted-residual stages: expansion t, output channels c (at 1.0×), blocks n, first stride s.
_MOBILENETV2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                       (6, 320, 1, 1))


class TorchreidMobileNetV2(nn.Module):
    """torchreid's MobileNetV2 (``mobilenetv2_x1_0`` / ``x1_4``) from torchvision's blocks. It differs from
    torchvision's network in two ways: its first block (expansion 1) still has the pointwise expansion
    convolution, and its widths are ``int(c × width)``, not rounded to multiples of 8 (1.4×: 44, 22, 33, 44, 89,
    134, 224, 448 channels, then 1792). Layers are numbered in ``features`` as torchvision's; torchreid's files
    load by name (:data:`fastreid.modeling.layouts.backbone_files.TORCHREID_MOBILENETV2`).

    Args:
        width: the width multiplier (torchreid: 1.0 or 1.4).
        last_stride: 2, or 1 to remove the last downsampling.
        norm: MODEL.BACKBONE.NORM.

    Attributes:
        out_channels (int): 1280 (``int(1280 × width)`` above 1.0×).
    """

    def __init__(self, width: float = 1.0, last_stride: int = 2, norm: str = "BN") -> None:
        super().__init__()
        from torchvision.models.mobilenetv2 import InvertedResidual
        from torchvision.ops.misc import Conv2dNormActivation

        conv_bn_relu6 = partial(Conv2dNormActivation, activation_layer=nn.ReLU6)
        channels = int(32 * width)
        layers = [conv_bn_relu6(3, channels, stride=2)]
        for t, c, n, s in _MOBILENETV2_STAGES:
            for i in range(n):
                block = InvertedResidual(channels, int(c * width), s if i == 0 else 1, t)
                if t == 1:  # torchvision leaves out the expansion by 1 that torchreid keeps
                    block.conv = nn.Sequential(conv_bn_relu6(channels, channels, kernel_size=1), *block.conv)
                layers.append(block)
                channels = int(c * width)
        self.out_channels = int(1280 * width) if width > 1 else 1280
        layers.append(conv_bn_relu6(channels, self.out_channels, kernel_size=1))
        self.features = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if last_stride == 1:
            with torch.device("meta"):
                meta = TorchreidMobileNetV2(width)
            remove_last_downsampling(self, meta, f"mobilenetv2 {width}x")
        elif last_stride != 2:
            raise ValueError(f"MODEL.BACKBONE.LAST_STRIDE must be 1 or 2 for MobileNetV2, got {last_stride}")
        convert_batchnorm(self, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map B×3×H×W images to the B×``out_channels``×H/32×W/32 map (H/16×W/16 with last stride 1)."""
        return self.features(x)


# torchreid's published ImageNet files (no checksum published: never downloaded; place them in the hub cache).
_TORCHREID_MOBILENETV2_FILES = {"1.0x": "mobilenetv2_1.0-0f5d2d8f.pth", "1.4x": "mobilenetv2_1.4-4d0d3520.pth"}


@BACKBONE_REGISTRY.register()
def build_torchreid_mobilenetv2_backbone(cfg) -> TorchreidMobileNetV2:
    """torchreid's MobileNetV2 (:class:`TorchreidMobileNetV2`); DEPTH "1.0x" or "1.4x". Reads LAST_STRIDE, NORM,
    PRETRAIN and PRETRAIN_PATH (torchreid's ImageNet file, from the torch hub cache without a path)."""
    bb = cfg.MODEL.BACKBONE
    name = _variant(cfg, _TORCHREID_MOBILENETV2_FILES, "build_torchreid_mobilenetv2_backbone")
    model = TorchreidMobileNetV2(_MOBILENETV2_WIDTHS[str(bb.DEPTH)], bb.LAST_STRIDE, bb.NORM)
    init_pretrained(model, bb.PRETRAIN, bb.PRETRAIN_PATH, [name],
                    ignore_unexpected=("classifier.weight", "classifier.bias"))
    return model


class IBNbBottleneck(Bottleneck):
    """A ResNet bottleneck with instance norm (affine) after the residual sum, before the ReLU (IBN-Net's "b"
    blocks). Arguments as :class:`fastreid.modeling.backbones.resnet.Bottleneck`; the norm is ``IN``, as in the
    published IBN-b weights."""

    def __init__(self, inplanes: int, planes: int, *args, **kwargs) -> None:
        super().__init__(inplanes, planes, *args, **kwargs)
        self.IN = InstanceNorm2d(planes * self.expansion, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.avd_layer(self.relu(self.bn2(self.conv2(out))))
        out = self.se(self.bn3(self.conv3(out)))
        return self.relu(self.IN(out + identity))


_IBN_B_FILES = {50: "resnet50_ibn_b-9ca61e85.pth", 101: "resnet101_ibn_b-c55f6dba.pth"}


@BACKBONE_REGISTRY.register()
def build_resnet_ibn_b_backbone(cfg) -> ResNet:
    """ResNet-50/101 IBN-b (MODEL.BACKBONE.DEPTH "50x" / "101x"): fastreid's ResNet whose stem norm is an
    instance norm and whose stages 1 and 2 end with an IBN-b block. Reads LAST_STRIDE, NORM, WITH_SE, STEM_POOL,
    PRETRAIN and PRETRAIN_PATH (IBN-Net's file from the torch hub cache)."""
    bb = cfg.MODEL.BACKBONE
    if bb.WITH_IBN:
        raise ValueError("build_resnet_ibn_b_backbone builds IBN-b; set MODEL.BACKBONE.WITH_IBN False (IBN-a is "
                         "build_resnet_backbone with WITH_IBN True)")
    depth = parse_depth(bb.DEPTH, sorted(_IBN_B_FILES))
    plain = cfg.clone()
    plain.defrost()
    plain.MODEL.BACKBONE.PRETRAIN = False  # the IBN-b file is loaded once the layers it describes exist
    model = build_resnet_family(plain, depth, [], with_nl=False, stem_pool=bb.STEM_POOL)
    model.bn1 = InstanceNorm2d(model.bn1.num_features, affine=True)
    for stage in (model.layer1, model.layer2):
        last = stage[-1]
        stage[-1] = IBNbBottleneck(last.conv1.in_channels, last.conv1.out_channels, norm=bb.NORM,
                                   with_se=bb.WITH_SE)
    init_pretrained(model, bb.PRETRAIN, bb.PRETRAIN_PATH, [_IBN_B_FILES[depth]])
    return model


class NASNetAMobile(nn.Module):
    """NASNet-A Mobile (4 @ 1056; Zoph et al. 2018), torchreid's ``nasnsetmobile``: timm keeps only NASNet-A
    Large, so this assembles timm's NASNet cells (``timm.models.nasnet``) with four cells per stage. Module names
    are those of Cadene's ``nasnetamobile`` (``conv0``, ``cell_stem_0``, ``cell_0`` … ``cell_11``,
    ``reduction_cell_0/1``), whose ImageNet weights torchreid loads.

    Args:
        last_stride: 2, or 1 to remove the last downsampling (the last reduction cell and the factorized
            reduction of the cell after it).
        stem_size: channels of the stem convolution.
        penultimate_filters: output channels (24 × the cells' base width).
        cells_per_stage: normal cells per stage (including the first cell after each reduction).

    Attributes:
        out_channels (int): ``penultimate_filters``.
    """

    def __init__(self, last_stride: int = 2, stem_size: int = 32, penultimate_filters: int = 1056,
                 cells_per_stage: int = 4) -> None:
        super().__init__()
        from timm.layers import ConvNormAct
        from timm.models.nasnet import CellStem0, CellStem1, FirstCell, NormalCell, ReductionCell0, ReductionCell1

        c = penultimate_filters // 24
        self.conv0 = ConvNormAct(3, stem_size, 3, stride=2, padding=0, apply_act=False,
                                 norm_layer=partial(nn.BatchNorm2d, eps=0.001, momentum=0.1))
        self.cell_stem_0 = CellStem0(stem_size, num_channels=c // 4, pad_type="same")
        self.cell_stem_1 = CellStem1(stem_size, num_channels=c // 2, pad_type="same")
        self._order = []
        in_left, in_right = c, 2 * c  # channels of the previous two outputs (stem 1, stem 0 concatenated)
        index = 0
        for stage, width in enumerate((c, 2 * c, 4 * c)):
            if stage:
                reduction = (ReductionCell0, ReductionCell1)[stage - 1]
                name = f"reduction_cell_{stage - 1}"
                self.add_module(name, reduction(in_chs_left=in_right, out_chs_left=width, in_chs_right=in_right,
                                                out_chs_right=width, pad_type="same"))
                self._order.append(name)
                in_right = 4 * width  # a reduction cell concatenates four branches; the left input is unchanged
            for i in range(cells_per_stage):
                if i == 0:
                    cell = FirstCell(in_chs_left=in_left, out_chs_left=width // 2, in_chs_right=in_right,
                                     out_chs_right=width, pad_type="same")
                else:
                    cell = NormalCell(in_chs_left=in_left, out_chs_left=width, in_chs_right=in_right,
                                      out_chs_right=width, pad_type="same")
                name = f"cell_{index}"
                self.add_module(name, cell)
                self._order.append(name)
                index += 1
                in_left, in_right = in_right, 6 * width
        self.relu = nn.ReLU(inplace=True)
        self.out_channels = penultimate_filters
        if last_stride == 1:
            with torch.device("meta"):
                meta = NASNetAMobile(2, stem_size, penultimate_filters, cells_per_stage)
            remove_last_downsampling(self, meta, "nasnetamobile")
        elif last_stride != 2:
            raise ValueError(f"MODEL.BACKBONE.LAST_STRIDE must be 1 or 2 for NASNet-A Mobile, got {last_stride}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map B×3×H×W images to the B×``out_channels``×H/32×W/32 map (H/16×W/16 with last stride 1)."""
        x = self.conv0(x)
        prev = self.cell_stem_0(x)
        cur = self.cell_stem_1(x, prev)
        for name in self._order:
            out = getattr(self, name)(cur, prev)
            if name.startswith("reduction"):
                cur = out  # the cell after a reduction still takes the last pre-reduction output on its left
            else:
                prev, cur = cur, out
        return self.relu(cur)


@BACKBONE_REGISTRY.register()
def build_nasnetamobile_backbone(cfg) -> NASNetAMobile:
    """NASNet-A Mobile, reading LAST_STRIDE, PRETRAIN and PRETRAIN_PATH (Cadene's ImageNet file from the torch
    hub cache, as torchreid loads it)."""
    bb = cfg.MODEL.BACKBONE
    model = NASNetAMobile(bb.LAST_STRIDE)
    init_pretrained(model, bb.PRETRAIN, bb.PRETRAIN_PATH, ["nasnetamobile-7e03cead.pth"],
                    ignore_unexpected=("last_linear.weight", "last_linear.bias"))
    return model


def _zoo(builder: str, depth: str, channels: int, last_stride: int = 2, fc_dim: int = 0,
         extra: Optional[tuple] = None) -> tuple:
    return ("MODEL.BACKBONE.NAME", builder, "MODEL.BACKBONE.DEPTH", depth, "MODEL.BACKBONE.LAST_STRIDE", last_stride,
            "MODEL.BACKBONE.FEAT_DIM", channels, "MODEL.HEADS.EMBEDDING_DIM", fc_dim) + (extra or ())


# torchreid's names: its ShuffleNetV2 is torchvision's network, its MobileNetV2 torchreid's variant, last stride 2,
# no fc layer; its ResNet-IBN models use torchvision's stem.
# Published figures: torchreid's MODEL_ZOO.md (parameters without the classifier, mult-adds at 256×128).
register_zoo_model("mobilenetv2_x1_0", _zoo("build_torchreid_mobilenetv2_backbone", "1.0x", 1280),
                   published={"params_m": 2.2, "gmacs": 0.2})
register_zoo_model("mobilenetv2_x1_4", _zoo("build_torchreid_mobilenetv2_backbone", "1.4x", 1792),
                   published={"params_m": 4.3})
for _depth, _channels in (("0.5x", 1024), ("1.0x", 1024), ("1.5x", 1024), ("2.0x", 2048)):
    register_zoo_model(f"shufflenet_v2_x{_depth[:-1].replace('.', '_')}",
                       _zoo("build_shufflenetv2_backbone", _depth, _channels))
register_zoo_model("resnet50_ibn_a", torchreid_resnet_options("50x") + ("MODEL.BACKBONE.WITH_IBN", True))
register_zoo_model("nasnsetmobile", ("MODEL.BACKBONE.NAME", "build_nasnetamobile_backbone",
                                     "MODEL.BACKBONE.LAST_STRIDE", 2, "MODEL.BACKBONE.FEAT_DIM", 1056))
register_zoo_model("resnet50_ibn_b", torchreid_resnet_options("50x", builder="build_resnet_ibn_b_backbone"))
# fast-reid's other architectures under the libraries' names, with torchreid's head (last stride 2, no fc).
# DEPTH as torchvision names the networks: torchvision's BatchNorm settings, which its ImageNet weights need.
register_zoo_model("mobilenetv3_large", _zoo("build_mobilenetv3_backbone", "mobilenet_v3_large", 1280))
register_zoo_model("mobilenetv3_small", _zoo("build_mobilenetv3_backbone", "mobilenet_v3_small", 1024))
_EFFNET_CHANNELS = (1280, 1280, 1408, 1536, 1792, 2048, 2304, 2560)
for _i, _channels in enumerate(_EFFNET_CHANNELS):
    register_zoo_model(f"efficientnet_b{_i}", _zoo("build_effnet_backbone", f"efficientnet_b{_i}", _channels))
for _depth, _channels in _REGNET_CHANNELS.items():
    register_zoo_model(f"regnet{_depth[-1]}_{_depth[:-1]}mf", _zoo("build_regnet_backbone", _depth, _channels))
