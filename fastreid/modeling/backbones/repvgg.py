"""RepVGG (Ding et al., CVPR 2021) as fast-reid builds it: plain 3×3 stages trained with parallel 1×1 and
identity branches that fuse into one 3×3 convolution for deployment.

MODEL.BACKBONE.DEPTH names the variant as fast-reid does ("A0" … "B3g4"). Module names follow the RepVGG release
(``stage0`` … ``stage4``; per block ``rbr_dense.conv``/``rbr_dense.bn``, ``rbr_1x1.conv``/``rbr_1x1.bn``,
``rbr_identity`` and, once fused, ``rbr_reparam``), so its ImageNet ``RepVGG-<variant>-train.pth`` files load by
name into a training model and its ``-deploy.pth`` files into one built with ``deploy=True``.

The fusion is exact for batch norms in evaluation mode (running statistics): call :func:`switch_to_deploy` on a
trained model (or any module holding RepVGG blocks) before export or inference.
"""
import logging
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from fastreid.layers import get_norm
from fastreid.modeling.pretrained import init_pretrained

from .build import BACKBONE_REGISTRY
from .zoo import register_zoo_model

__all__ = ["RepVGG", "RepVGGBlock", "build_repvgg_backbone", "repvgg_variant", "switch_to_deploy"]

logger = logging.getLogger(__name__)


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int, groups: int,
             norm: str) -> nn.Sequential:
    padding = kernel_size // 2
    branch = nn.Sequential()
    branch.add_module("conv", nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups,
                                        bias=False))
    branch.add_module("bn", get_norm(norm, out_channels))
    return branch


def _bn_stats(bn: nn.Module) -> Tuple[torch.Tensor, torch.Tensor, float, torch.Tensor, torch.Tensor]:
    """(running_mean, running_var, eps, weight, bias) of a batch norm, or a clear error for another norm."""
    stats = [getattr(bn, k, None) for k in ("running_mean", "running_var", "eps", "weight", "bias")]
    if any(s is None for s in stats):
        raise TypeError(
            f"RepVGG fusion needs batch norms with running statistics and affine parameters; got "
            f"{type(bn).__name__}. Train with MODEL.BACKBONE.NORM 'BN' (or SyncBN/GhostBN/FrozenBN) to deploy."
        )
    return tuple(stats)


class RepVGGBlock(nn.Module):
    """A 3×3 conv-BN branch plus a 1×1 conv-BN branch plus (same shape) an identity BN, summed, then ReLU.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: stride of both convolutions (the identity branch exists only at stride 1 and equal widths).
        groups: groups of both convolutions.
        norm: norm name (see :func:`fastreid.layers.get_norm`).
        deploy: build the fused single 3×3 convolution (``rbr_reparam``) instead of the three branches.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, groups: int = 1, norm: str = "BN",
                 deploy: bool = False) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.stride, self.groups = in_channels, out_channels, stride, groups
        self.nonlinearity = nn.ReLU(inplace=True)
        if deploy:
            self.rbr_reparam = nn.Conv2d(in_channels, out_channels, 3, stride, 1, groups=groups, bias=True)
            return
        self.rbr_identity = get_norm(norm, in_channels) if in_channels == out_channels and stride == 1 else None
        self.rbr_dense = _conv_bn(in_channels, out_channels, 3, stride, groups, norm)
        self.rbr_1x1 = _conv_bn(in_channels, out_channels, 1, stride, groups, norm)

    @property
    def deployed(self) -> bool:
        """True once the branches are fused into ``rbr_reparam``."""
        return hasattr(self, "rbr_reparam")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B×in×H×W → B×out×H/stride×W/stride."""
        if self.deployed:
            return self.nonlinearity(self.rbr_reparam(x))
        out = self.rbr_dense(x) + self.rbr_1x1(x)
        if self.rbr_identity is not None:
            out = out + self.rbr_identity(x)
        return self.nonlinearity(out)

    def equivalent_kernel_bias(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """The 3×3 kernel (out × in/groups × 3 × 3) and bias (out) of one convolution equal to the three branches
        with their norms in evaluation mode."""
        kernel, bias = self._fuse(self.rbr_dense.conv.weight, self.rbr_dense.bn)
        k1, b1 = self._fuse(self.rbr_1x1.conv.weight, self.rbr_1x1.bn)
        kernel, bias = kernel + nn.functional.pad(k1, [1, 1, 1, 1]), bias + b1
        if self.rbr_identity is not None:
            # The identity as a 3×3 kernel: a centre 1 from each channel to itself within its group.
            per_group = self.in_channels // self.groups
            eye = torch.zeros_like(kernel)
            channels = torch.arange(self.in_channels, device=kernel.device)
            eye[channels, channels % per_group, 1, 1] = 1.0
            ki, bi = self._fuse(eye, self.rbr_identity)
            kernel, bias = kernel + ki, bias + bi
        return kernel, bias

    @staticmethod
    def _fuse(kernel: torch.Tensor, bn: nn.Module) -> Tuple[torch.Tensor, torch.Tensor]:
        mean, var, eps, weight, bias = _bn_stats(bn)
        fused_w, fused_b = fuse_conv_bn_weights(kernel, None, mean, var, eps, weight, bias)
        return fused_w.detach(), fused_b.detach()

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Replace the branches by ``rbr_reparam``, one 3×3 convolution with bias (a no-op once deployed)."""
        if self.deployed:
            return
        kernel, bias = self.equivalent_kernel_bias()
        conv = self.rbr_dense.conv
        fused = nn.Conv2d(self.in_channels, self.out_channels, 3, self.stride, 1, groups=self.groups, bias=True)
        fused.to(device=kernel.device, dtype=kernel.dtype)
        fused.weight.copy_(kernel)
        fused.bias.copy_(bias)
        fused.weight.requires_grad_(conv.weight.requires_grad)
        fused.bias.requires_grad_(conv.weight.requires_grad)
        del self.rbr_dense, self.rbr_1x1, self.rbr_identity
        self.rbr_reparam = fused


class RepVGG(nn.Module):
    """Five RepVGG stages returning the last one's feature map.

    Args:
        num_blocks: blocks of stages 1–4 (stage 0 is one stride-2 block).
        width_multiplier: width factors of stages 1–4 over (64, 128, 256, 512).
        groups_map: groups of the blocks at these indices (counted from 1 at stage 1's first block); others
            use 1.
        last_stride: stride of stage 4 (1 keeps a 16×8 map at 256×128 input).
        norm: norm name for every norm layer.
        deploy: build the fused form directly (for RepVGG's ``-deploy.pth`` files).

    Attributes:
        out_channels (int): channels of the output map.
    """

    def __init__(
        self,
        num_blocks: Sequence[int],
        width_multiplier: Sequence[float],
        *,
        groups_map: Optional[Dict[int, int]] = None,
        last_stride: int = 1,
        norm: str = "BN",
        deploy: bool = False,
    ) -> None:
        super().__init__()
        if len(num_blocks) != 4 or len(width_multiplier) != 4:
            raise ValueError(f"RepVGG needs 4 block counts and 4 width factors, got {num_blocks}, {width_multiplier}")
        groups_map = dict(groups_map or {})
        block_kwargs = dict(norm=norm, deploy=deploy)
        in_planes = min(64, int(64 * width_multiplier[0]))
        self.stage0 = RepVGGBlock(3, in_planes, stride=2, **block_kwargs)
        index = 1
        for s, (base, blocks, stride) in enumerate(zip((64, 128, 256, 512), num_blocks, (2, 2, 2, last_stride))):
            planes = int(base * width_multiplier[s])
            stage = []
            for b in range(blocks):
                stage.append(RepVGGBlock(in_planes, planes, stride if b == 0 else 1, groups_map.get(index, 1),
                                         **block_kwargs))
                in_planes = planes
                index += 1
            self.add_module(f"stage{s + 1}", nn.Sequential(*stage))
        self.out_channels = in_planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map B×3×H×W images to the B×``out_channels``×H/32×W/32 map (H/16×W/16 with last stride 1)."""
        for i in range(5):
            x = getattr(self, f"stage{i}")(x)
        return x

    def switch_to_deploy(self) -> "RepVGG":
        """Fuse every block (see :func:`switch_to_deploy`); returns ``self``."""
        return switch_to_deploy(self)


def switch_to_deploy(model: nn.Module) -> nn.Module:
    """Fuse every :class:`RepVGGBlock` inside ``model`` (a RepVGG backbone or a whole reid model) in place.

    Outputs in evaluation mode are unchanged (to float rounding); the fused model has no batch norms in its
    blocks, so train it no further as RepVGG.

    Args:
        model: any module.

    Returns:
        ``model``, fused.
    """
    blocks = [m for m in model.modules() if isinstance(m, RepVGGBlock)]
    for block in blocks:
        block.switch_to_deploy()
    logger.info("Fused %d RepVGG blocks for deployment", len(blocks))
    return model


# Blocks with optional grouped convolutions: every other block (fast-reid's and RepVGG's table).
_GROUPWISE = tuple(range(2, 27, 2))
_BLOCKS_A, _BLOCKS_B = (2, 4, 14, 1), (4, 6, 16, 1)
# Plain variants: blocks per stage and width multipliers.
_PLAIN: Dict[str, Tuple[Sequence[int], Sequence[float]]] = {
    "A0": (_BLOCKS_A, (0.75, 0.75, 0.75, 2.5)),
    "A1": (_BLOCKS_A, (1, 1, 1, 2.5)),
    "A2": (_BLOCKS_A, (1.5, 1.5, 1.5, 2.75)),
    "B0": (_BLOCKS_B, (1, 1, 1, 2.5)),
    "B1": (_BLOCKS_B, (2, 2, 2, 4)),
    "B2": (_BLOCKS_B, (2.5, 2.5, 2.5, 5)),
    "B3": (_BLOCKS_B, (3, 3, 3, 5)),
}
# DEPTH -> (blocks per stage, width multipliers, groups of the optional grouped blocks): B1/B2/B3 also come with
# 2 or 4 groups ("B1g2", "B1g4", ...).
_VARIANTS: Dict[str, Tuple[Sequence[int], Sequence[float], int]] = {
    f"{name}{suffix}": (*_PLAIN[name], groups)
    for name in _PLAIN
    for suffix, groups in (("", 1), ("g2", 2), ("g4", 4))
    if groups == 1 or name.startswith("B") and name != "B0"
}


def repvgg_variant(depth: str, **kwargs) -> RepVGG:
    """The RepVGG variant ``depth`` ("A0" … "B3g4"); ``kwargs`` go to :class:`RepVGG`.

    Raises:
        KeyError: for an unknown variant, listing the known ones.
    """
    if depth not in _VARIANTS:
        raise KeyError(f"MODEL.BACKBONE.DEPTH '{depth}' is not a RepVGG variant; expected one of {list(_VARIANTS)}")
    blocks, widths, groups = _VARIANTS[depth]
    groups_map = {i: groups for i in _GROUPWISE} if groups > 1 else None
    return RepVGG(blocks, widths, groups_map=groups_map, **kwargs)


@BACKBONE_REGISTRY.register()
def build_repvgg_backbone(cfg) -> RepVGG:
    """RepVGG-A0 … B3g4 (MODEL.BACKBONE.DEPTH) in training form, with LAST_STRIDE and NORM; PRETRAIN loads
    RepVGG's ``RepVGG-<variant>-train.pth`` from PRETRAIN_PATH or the torch hub cache."""
    bb = cfg.MODEL.BACKBONE
    depth = str(bb.DEPTH)
    model = repvgg_variant(depth, last_stride=bb.LAST_STRIDE, norm=bb.NORM)
    init_pretrained(model, bb.PRETRAIN, bb.PRETRAIN_PATH, [f"RepVGG-{depth}-train.pth"],
                    ignore_unexpected=("linear.weight", "linear.bias"))
    return model


for _variant in _VARIANTS:
    _channels = int(512 * _VARIANTS[_variant][1][3])
    register_zoo_model(
        f"repvgg_{_variant.lower()}",
        ("MODEL.BACKBONE.NAME", "build_repvgg_backbone", "MODEL.BACKBONE.DEPTH", _variant,
         "MODEL.BACKBONE.LAST_STRIDE", 1, "MODEL.BACKBONE.FEAT_DIM", _channels),
    )
