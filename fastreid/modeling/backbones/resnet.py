"""ResNet-family backbones: ResNet with IBN-a, SE and non-local options; ResNeXt and ResNeSt are the same
network with grouped or split-attention 3×3 convolutions (see resnext.py, resnest.py).

Module names follow torchvision (``conv1``, ``bn1``, ``layer1`` … ``layer4``, ``downsample``), so torchvision,
IBN-Net and ResNeSt ImageNet weights load by name. Non-local blocks live in ``NL_1`` … ``NL_4`` as in
fast-reid.
"""
import logging
from typing import Dict, List, Optional, Sequence, Type, Union

import torch
from torch import nn

from fastreid.layers import IBN, NonLocal, SELayer, SplAtConv2d, get_norm
from fastreid.modeling.pretrained import init_pretrained

from .build import BACKBONE_REGISTRY
from .zoo import register_zoo_model

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "build_resnet_backbone", "parse_depth"]

logger = logging.getLogger(__name__)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a residual connection (ResNet-18/34).

    Args:
        inplanes: input channels.
        planes: output channels.
        stride: stride of the first convolution.
        downsample: projection of the shortcut, when the shape changes.
        norm: norm name (see :func:`fastreid.layers.get_norm`).
        with_ibn: IBN-a in place of the first norm.
        with_se: squeeze-and-excitation before the residual sum.
    """

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: Optional[nn.Module] = None,
        *,
        norm: str = "BN",
        with_ibn: bool = False,
        with_se: bool = False,
        groups: int = 1,
        base_width: int = 64,
        radix: int = 0,
        avd: bool = False,
        is_first: bool = False,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        if groups != 1 or base_width != 64 or radix or dilation != 1:
            raise ValueError("BasicBlock supports neither groups, width_per_group, split attention nor dilation")
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = IBN(planes, norm) if with_ibn else get_norm(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = get_norm(norm, planes)
        self.relu = nn.ReLU(inplace=True)
        self.se = SELayer(planes) if with_se else nn.Identity()
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1×1 → 3×3 → 1×1 bottleneck (ResNet-50+), optionally grouped (ResNeXt) or split-attention (ResNeSt).

    Args:
        inplanes: input channels.
        planes: bottleneck channels; the output has ``planes * 4``.
        stride: spatial stride (of the 3×3 convolution, or of the average pool when ``avd``).
        downsample: projection of the shortcut, when the shape changes.
        norm: norm name.
        with_ibn: IBN-a in place of the first norm.
        with_se: squeeze-and-excitation before the residual sum.
        groups: cardinality of the 3×3 convolution.
        base_width: width per group at ``planes`` 64 (64 for ResNet, 4 for ResNeXt 32×4d).
        radix: split-attention radix; 0 uses a plain (grouped) 3×3 convolution.
        avd: ResNeSt's average-pool downsampling after the 3×3 convolution.
        is_first: first block of a stage other than the first (ResNeSt applies ``avd`` there).
        dilation: dilation (and padding) of the 3×3 convolution.
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: Optional[nn.Module] = None,
        *,
        norm: str = "BN",
        with_ibn: bool = False,
        with_se: bool = False,
        groups: int = 1,
        base_width: int = 64,
        radix: int = 0,
        avd: bool = False,
        is_first: bool = False,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = IBN(width, norm) if with_ibn else get_norm(norm, width)
        use_avd = avd and (stride > 1 or is_first)
        conv_stride = 1 if use_avd else stride
        if radix > 0:
            self.conv2 = SplAtConv2d(
                width, width, 3, conv_stride, dilation, dilation, groups=groups, radix=radix, norm=norm
            )
            self.bn2 = nn.Identity()  # the split-attention conv normalises internally
        else:
            self.conv2 = nn.Conv2d(width, width, 3, conv_stride, dilation, dilation, groups=groups, bias=False)
            self.bn2 = get_norm(norm, width)
        self.avd_layer = nn.AvgPool2d(3, stride, padding=1) if use_avd else nn.Identity()
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = get_norm(norm, planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.se = SELayer(planes * self.expansion) if with_se else nn.Identity()
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.avd_layer(self.relu(self.bn2(self.conv2(out))))
        out = self.se(self.bn3(self.conv3(out)))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A four-stage residual network returning the last stage's feature map.

    Args:
        block: ``BasicBlock`` or ``Bottleneck``.
        layers: blocks per stage, e.g. (3, 4, 6, 3) for ResNet-50.
        last_stride: stride of stage 4 (1 keeps a 16×8 map at 256×128 input).
        norm: norm name for every norm layer.
        with_ibn: IBN-a in stages 1–3 (as IBN-Net's "a" variant).
        with_se: squeeze-and-excitation in every block.
        nl_layers: non-local blocks per stage, inserted after the last blocks of that stage.
        groups, width_per_group, radix, avd: see :class:`Bottleneck`.
        deep_stem: three 3×3 convolutions (width ``stem_width``, ``2 * stem_width``) instead of one 7×7.
        avg_down: downsample shortcuts by average pooling then a stride-1 1×1 convolution.
        stem_pool: the stem's 3×3 stride-2 max pool: "padded" (padding 1, as torchvision) or "ceil" (no padding,
            ceil mode, as fast-reid's ResNet; same output size at even input sizes, windows one pixel apart).
        ibn_stages: how many stages, from the first, use IBN-a when ``with_ibn`` (3 as IBN-Net's ResNet, 4 as
            fast-reid's ResNeXt).
        dilate_last: with ``last_stride`` 1, dilate the 3×3 convolutions of stage 4 after its first block by 2
            (ResNeSt's way of keeping the receptive field).
        nl_inter_channels: inner width of the non-local blocks (see :class:`fastreid.layers.NonLocal`).

    Attributes:
        out_channels (int): channels of the output map.
    """

    def __init__(
        self,
        block: Type[Union[BasicBlock, Bottleneck]],
        layers: Sequence[int],
        *,
        last_stride: int = 1,
        norm: str = "BN",
        with_ibn: bool = False,
        with_se: bool = False,
        nl_layers: Sequence[int] = (0, 0, 0, 0),
        groups: int = 1,
        width_per_group: int = 64,
        radix: int = 0,
        avd: bool = False,
        deep_stem: bool = False,
        stem_width: int = 32,
        avg_down: bool = False,
        stem_pool: str = "padded",
        ibn_stages: int = 3,
        dilate_last: bool = False,
        nl_inter_channels: int = 0,
    ) -> None:
        super().__init__()
        self._block = block
        self._norm = norm
        self._avg_down = avg_down
        self._block_kwargs = dict(
            norm=norm, with_se=with_se, groups=groups, base_width=width_per_group, radix=radix, avd=avd
        )
        if deep_stem:
            self.conv1 = nn.Sequential(
                nn.Conv2d(3, stem_width, 3, 2, 1, bias=False),
                get_norm(norm, stem_width),
                nn.ReLU(inplace=True),
                nn.Conv2d(stem_width, stem_width, 3, 1, 1, bias=False),
                get_norm(norm, stem_width),
                nn.ReLU(inplace=True),
                nn.Conv2d(stem_width, stem_width * 2, 3, 1, 1, bias=False),
            )
            self.inplanes = stem_width * 2
        else:
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.inplanes = 64
        self.bn1 = get_norm(norm, self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = _stem_pool(stem_pool)
        strides = (1, 2, 2, last_stride)
        dilations = (1, 1, 1, 2 if dilate_last and last_stride == 1 else 1)
        for i, (planes, num_blocks, stride) in enumerate(zip((64, 128, 256, 512), layers, strides)):
            stage = self.make_stage(
                planes, num_blocks, stride, with_ibn=with_ibn and i < ibn_stages, is_first=i > 0,
                dilation=dilations[i],
            )
            self.add_module(f"layer{i + 1}", stage)
            nl_channels = planes * block.expansion
            self.add_module(
                f"NL_{i + 1}",
                nn.ModuleList(NonLocal(nl_channels, norm, nl_inter_channels) for _ in range(nl_layers[i])),
            )
        # Block indices after which each stage's non-local blocks run (the last ones of the stage).
        self._nl_after: List[List[int]] = [
            sorted(num_blocks - 1 - j for j in range(n)) for num_blocks, n in zip(layers, nl_layers)
        ]
        self.out_channels = 512 * block.expansion
        self._init_weights()

    def make_stage(
        self, planes: int, num_blocks: int, stride: int, with_ibn: bool, is_first: bool, dilation: int = 1
    ) -> nn.Sequential:
        """Build one stage of ``num_blocks`` blocks starting from the current ``self.inplanes`` channels; blocks
        after the first use ``dilation``."""
        out = planes * self._block.expansion
        downsample = None
        if stride != 1 or self.inplanes != out:
            if self._avg_down:
                downsample = nn.Sequential(
                    nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False),
                    nn.Conv2d(self.inplanes, out, 1, 1, bias=False),
                    get_norm(self._norm, out),
                )
            else:
                downsample = nn.Sequential(
                    nn.Conv2d(self.inplanes, out, 1, stride, bias=False), get_norm(self._norm, out)
                )
        blocks = [
            self._block(
                self.inplanes, planes, stride, downsample, with_ibn=with_ibn, is_first=is_first, **self._block_kwargs
            )
        ]
        self.inplanes = out
        blocks += [
            self._block(self.inplanes, planes, with_ibn=with_ibn, dilation=dilation, **self._block_kwargs)
            for _ in range(1, num_blocks)
        ]
        return nn.Sequential(*blocks)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def stem_modules(self) -> List[nn.Module]:
        """The modules before ``layer1``, in order (for meta-archs that split the network)."""
        return [self.conv1, self.bn1, self.relu, self.maxpool]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map B×3×H×W images to the B×``out_channels``×H/32×W/32 map (H/16×W/16 with last stride 1)."""
        for m in self.stem_modules():
            x = m(x)
        for i in range(4):
            stage, nls, after = getattr(self, f"layer{i + 1}"), getattr(self, f"NL_{i + 1}"), self._nl_after[i]
            k = 0
            for j, blk in enumerate(stage):
                x = blk(x)
                if k < len(after) and j == after[k]:
                    x = nls[k](x)
                    k += 1
        return x


def _stem_pool(kind: str) -> nn.MaxPool2d:
    if kind == "ceil":
        return nn.MaxPool2d(3, 2, 0, ceil_mode=True)
    if kind == "padded":
        return nn.MaxPool2d(3, 2, 1)
    raise ValueError(f"MODEL.BACKBONE.STEM_POOL must be 'ceil' or 'padded', got {kind!r}")


_BLOCKS_PER_DEPTH: Dict[int, Sequence[int]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
    200: (3, 24, 36, 3),
}
# Non-local blocks per stage at fast-reid's positions (none for the basic-block depths).
_NL_PER_DEPTH: Dict[int, Sequence[int]] = {
    18: (0, 0, 0, 0),
    34: (0, 0, 0, 0),
    50: (0, 2, 3, 0),
    101: (0, 2, 9, 0),
    152: (0, 4, 3, 0),
    200: (0, 4, 3, 0),
}


def parse_depth(depth: str, allowed: Sequence[int]) -> int:
    """Turn MODEL.BACKBONE.DEPTH ("50x") into an int, checking it is one of ``allowed``."""
    value = str(depth).rstrip("x")
    if not value.isdigit() or int(value) not in allowed:
        raise KeyError(
            f"MODEL.BACKBONE.DEPTH '{depth}' is not supported here; expected one of "
            f"{[f'{d}x' for d in allowed]}"
        )
    return int(value)


def build_resnet_family(
    cfg,
    depth: int,
    file_names: Sequence[str],
    *,
    with_nl: Optional[bool] = None,
    nl_per_depth: Optional[Dict[int, Sequence[int]]] = None,
    **arch,
) -> ResNet:
    """Build a ResNet-family network from the common MODEL.BACKBONE keys plus ``arch`` options.

    Args:
        cfg: the config (reads LAST_STRIDE, NORM, WITH_IBN, WITH_SE, WITH_NL, NL_INTER_CHANNELS, PRETRAIN,
            PRETRAIN_PATH).
        depth: an int depth key of the per-depth tables.
        file_names: hub-cache names of the ImageNet weights (see :func:`init_pretrained`).
        with_nl: overrides WITH_NL (for architectures that have no non-local blocks).
        nl_per_depth: non-local blocks per stage by depth, where they differ from ResNet's.
        arch: extra :class:`ResNet` keyword arguments (groups, radix, deep_stem, ...).
    """
    bb = cfg.MODEL.BACKBONE
    with_nl = bb.WITH_NL if with_nl is None else with_nl
    nl_layers = {**_NL_PER_DEPTH, **(nl_per_depth or {})}[depth] if with_nl else (0, 0, 0, 0)
    if with_nl and not any(nl_layers):
        logger.warning("WITH_NL has no effect at depth %dx: fast-reid places no non-local blocks there", depth)
    model = ResNet(
        BasicBlock if depth < 50 else Bottleneck,
        _BLOCKS_PER_DEPTH[depth],
        last_stride=bb.LAST_STRIDE,
        norm=bb.NORM,
        with_ibn=bb.WITH_IBN,
        with_se=bb.WITH_SE,
        nl_layers=nl_layers,
        nl_inter_channels=bb.NL_INTER_CHANNELS,
        **arch,
    )
    init_pretrained(model, bb.PRETRAIN, bb.PRETRAIN_PATH, file_names)
    return model


# ImageNet weights: torchvision's, and IBN-Net's for IBN-a (any hash of the same name is accepted).
_RESNET_FILES = {
    18: "resnet18-f37072fd.pth",
    34: "resnet34-b627a593.pth",
    50: "resnet50-0676ba61.pth",
    101: "resnet101-63fe2227.pth",
    152: "resnet152-394f9c45.pth",
}
_RESNET_IBN_FILES = {
    18: "resnet18_ibn_a-2f571257.pth",
    34: "resnet34_ibn_a-94bc1577.pth",
    50: "resnet50_ibn_a-d9d0bb7b.pth",
    101: "resnet101_ibn_a-59ea0ac6.pth",
    152: "resnet152_ibn_a.pth",
}


@BACKBONE_REGISTRY.register()
def build_resnet_backbone(cfg) -> ResNet:
    """ResNet-18/34/50/101/152 (MODEL.BACKBONE.DEPTH "18x" … "152x") with IBN-a, SE and non-local options;
    MODEL.BACKBONE.STEM_POOL picks fast-reid's or torchvision's stem max pool."""
    depth = parse_depth(cfg.MODEL.BACKBONE.DEPTH, sorted(_RESNET_FILES))
    files = _RESNET_IBN_FILES if cfg.MODEL.BACKBONE.WITH_IBN else _RESNET_FILES
    return build_resnet_family(cfg, depth, [files[depth]], stem_pool=cfg.MODEL.BACKBONE.STEM_POOL)


def torchreid_resnet_options(depth: str, last_stride: int = 2, fc_dim: int = 0,
                             builder: str = "build_resnet_backbone") -> tuple:
    """Options of torchreid's ResNet-family models: torchvision's stem, last stride 2 (1 with an fc layer)."""
    return ("MODEL.BACKBONE.NAME", builder, "MODEL.BACKBONE.DEPTH", depth, "MODEL.BACKBONE.LAST_STRIDE", last_stride,
            "MODEL.BACKBONE.STEM_POOL", "padded", "MODEL.BACKBONE.FEAT_DIM", 512 if depth in ("18x", "34x") else 2048,
            "MODEL.HEADS.EMBEDDING_DIM", fc_dim)


for _depth in ("18", "34", "50", "101", "152"):
    register_zoo_model(f"resnet{_depth}", torchreid_resnet_options(f"{_depth}x"))
register_zoo_model("resnet50_fc512", torchreid_resnet_options("50x", last_stride=1, fc_dim=512))
