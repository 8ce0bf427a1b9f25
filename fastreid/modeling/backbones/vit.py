"""Vision Transformer backbone as fast-reid / TransReID use it: overlapping patches, class-token output.

Parameter names follow timm's ``VisionTransformer`` (``patch_embed.proj``, ``cls_token``, ``pos_embed``,
``blocks.{i}.norm1|attn.qkv|attn.proj|norm2|mlp.fc1|mlp.fc2``, ``norm``), so the jx/timm ImageNet weights load
by name; only the position embedding is resized to this model's patch grid.
"""
import logging
import math
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from fastreid.layers import DropPath
from fastreid.modeling.pretrained import (
    IncompatibleWeights,
    extract_state_dict,
    load_pretrained_weights,
    resolve_pretrained_path,
)
from fastreid.utils.file_io import PathManager

from .build import BACKBONE_REGISTRY

__all__ = ["Attention", "VisionTransformer", "build_vit_backbone", "load_vit_pretrained", "resize_pos_embed"]

logger = logging.getLogger(__name__)

PATCH_SIZE = 16


class Attention(nn.Module):
    """Multi-head self-attention over a token sequence.

    Args:
        dim: token width D.
        num_heads: heads; D must be divisible by it.
        qkv_bias: bias in the fused q/k/v projection.
        qk_scale: logit scale; None uses ``head_dim ** -0.5``.
        attn_drop: dropout on the attention weights.
        proj_drop: dropout after the output projection.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        qk_scale: Optional[float] = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"token width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.scale = qk_scale if qk_scale is not None else (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map B×N×D tokens to B×N×D."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4).unbind(0)
        dropout = self.attn_drop if self.training else 0.0
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, scale=self.scale)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(b, n, d)))


class Mlp(nn.Module):
    """Linear → GELU → dropout → Linear → dropout."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Block(nn.Module):
    """Pre-norm transformer block: x + DropPath(Attn(LN(x))), then x + DropPath(MLP(LN(x)))."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        qkv_bias: bool,
        qk_scale: Optional[float],
        drop: float,
        attn_drop: float,
        drop_path: float,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias, qk_scale, attn_drop, drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """Overlapping patch embedding: a 16×16 convolution with stride ``stride_size``, B×3×H×W → B×D×h×w."""

    def __init__(self, embed_dim: int, stride_size: Tuple[int, int]) -> None:
        super().__init__()
        self.stride_size = stride_size
        self.proj = nn.Conv2d(3, embed_dim, PATCH_SIZE, stride_size)

    def grid(self, height: int, width: int) -> Tuple[int, int]:
        """Patch grid (h, w) of an H×W input."""
        return (height - PATCH_SIZE) // self.stride_size[0] + 1, (width - PATCH_SIZE) // self.stride_size[1] + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def resize_pos_embed(
    pos_embed: torch.Tensor, grid: Tuple[int, int], old_grid: Optional[Tuple[int, int]] = None
) -> torch.Tensor:
    """Bilinearly resize the patch part of a position embedding to another patch grid; the cls part is kept.

    Args:
        pos_embed: 1×(1+h·w)×D (class-token position first).
        grid: target (h', w').
        old_grid: source (h, w); None assumes a square grid (ImageNet weights).

    Returns:
        Tensor 1×(1+h'·w')×D.
    """
    cls_pos, patch_pos = pos_embed[:, :1], pos_embed[:, 1:]
    if old_grid is None:
        side = math.isqrt(patch_pos.shape[1])
        if side * side != patch_pos.shape[1]:
            raise ValueError(f"cannot infer a square grid from {patch_pos.shape[1]} patch positions")
        old_grid = (side, side)
    if tuple(old_grid) == tuple(grid):
        return pos_embed
    d = patch_pos.shape[-1]
    patch_pos = patch_pos.reshape(1, old_grid[0], old_grid[1], d).permute(0, 3, 1, 2)
    patch_pos = F.interpolate(patch_pos, size=tuple(grid), mode="bilinear", align_corners=False)
    return torch.cat([cls_pos, patch_pos.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], d)], dim=1)


class VisionTransformer(nn.Module):
    """ViT with overlapping patches returning the final class token as a B×D×1×1 map.

    Args:
        img_size: (H, W) the position embedding is laid out for; other sizes interpolate it on the fly.
        stride_size: (sh, sw) patch stride; 16 gives non-overlapping patches, less overlaps them (TransReID).
        embed_dim: token width D.
        depth: number of blocks.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width as a multiple of D.
        qkv_bias: bias in the q/k/v projections.
        qk_scale: attention logit scale; None uses head_dim ** -0.5.
        drop_rate: dropout after the position embedding, in the MLP and after the attention projection.
        attn_drop_rate: dropout on the attention weights.
        drop_path_rate: stochastic-depth rate of the last block; rates rise linearly from 0 over the blocks.
        num_cameras: TransReID's side-information embedding (SIE), one learned D-vector per camera added to
            every token scaled by ``sie_coe``; 0 (default, and what ``build_vit_backbone`` uses) disables it.
            With SIE on, ``forward`` needs ``camera_ids``, which fastreid's Baseline does not pass.
        sie_coe: SIE scale (MODEL.BACKBONE.SIE_COE).

    Attributes:
        out_channels (int): D.
    """

    def __init__(
        self,
        img_size: Sequence[int] = (256, 128),
        stride_size: Sequence[int] = (16, 16),
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: Optional[float] = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        num_cameras: int = 0,
        sie_coe: float = 3.0,
    ) -> None:
        super().__init__()
        if min(img_size) < PATCH_SIZE:
            raise ValueError(f"input size {tuple(img_size)} is smaller than a {PATCH_SIZE}×{PATCH_SIZE} patch")
        self.patch_embed = PatchEmbed(embed_dim, (int(stride_size[0]), int(stride_size[1])))
        self.grid_size = self.patch_embed.grid(int(img_size[0]), int(img_size[1]))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid_size[0] * self.grid_size[1], embed_dim))
        self.num_cameras = num_cameras
        self.sie_coe = sie_coe
        if num_cameras > 0:
            self.sie_embed = nn.Parameter(torch.zeros(num_cameras, 1, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, qk_scale, drop_rate, attn_drop_rate, rate)
            for rate in rates
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.out_channels = embed_dim
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.num_cameras > 0:
            nn.init.trunc_normal_(self.sie_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d):
                # TransReID's overlapping patch embedding: He-style normal over kernel area × output channels.
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, camera_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Map B×3×H×W images (H, W ≥ 16) to the final class token as B×D×1×1.

        Args:
            x: images B×3×H×W.
            camera_ids: B camera indices in [0, num_cameras), required when SIE is on, else ignored.
        """
        x = self.patch_embed(x)
        grid = (x.shape[-2], x.shape[-1])
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        pos_embed = self.pos_embed
        if grid != self.grid_size:
            pos_embed = resize_pos_embed(pos_embed, grid, self.grid_size)
        x = x + pos_embed
        if self.num_cameras > 0:
            if camera_ids is None:
                raise ValueError("this ViT has a side-information embedding: pass camera_ids to forward")
            x = x + self.sie_coe * self.sie_embed[camera_ids]
        x = self.pos_drop(x)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)[:, 0].reshape(x.shape[0], -1, 1, 1)


def _adapt_timm_state_dict(state: Dict[str, torch.Tensor], model: VisionTransformer) -> Dict[str, torch.Tensor]:
    """Bring a timm/jx ViT state_dict to this model's shapes (position grid, conv patch weight, no dist token)."""
    state = dict(state)
    pos = state.get("pos_embed")
    if pos is not None:
        if "dist_token" in state:  # DeiT-distilled weights: drop the distillation token's position
            pos = torch.cat([pos[:, :1], pos[:, 2:]], dim=1)
        if pos.shape[1] != model.pos_embed.shape[1]:
            logger.info("Resizing pos_embed %s to the %d×%d patch grid", tuple(pos.shape), *model.grid_size)
        state["pos_embed"] = resize_pos_embed(pos, model.grid_size)
    proj = state.get("patch_embed.proj.weight")
    if proj is not None and proj.dim() < 4:  # early timm ViTs stored the patch projection as a Linear
        state["patch_embed.proj.weight"] = proj.reshape(model.patch_embed.proj.weight.shape)
    return state


def load_vit_pretrained(model: VisionTransformer, path: str) -> IncompatibleWeights:
    """Load timm/jx ImageNet ViT weights into ``model``, resizing the position embedding to its grid.

    The classifier (``head.*``), ``pre_logits.*`` and ``dist_token`` have no place in the backbone: they are
    returned as unexpected and left out of the logged mismatch table.

    Args:
        model: the backbone to fill.
        path: a timm-format state_dict file (or a checkpoint holding one under "model"/"state_dict").

    Returns:
        IncompatibleWeights: keys that did not load.
    """
    with PathManager.open(path, "rb") as f:
        checkpoint = torch.load(f, map_location="cpu", weights_only=True)
    state = _adapt_timm_state_dict(extract_state_dict(checkpoint), model)
    logger.info("Loading ViT weights from %s", path)
    skipped = [k for k in state if k.startswith(("head.", "pre_logits.")) or k == "dist_token"]
    return load_pretrained_weights(model, state, ignore_unexpected=skipped)


# MODEL.BACKBONE.DEPTH → architecture, as fast-reid defines them ('small' is fast-reid's, not DeiT-S).
_ARCHS = {
    "small": dict(embed_dim=768, depth=8, num_heads=8, mlp_ratio=3.0, qkv_bias=False, qk_scale=768**-0.5),
    "base": dict(embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0, qkv_bias=True, qk_scale=None),
}
# Hub-cache names of the ImageNet weights (timm's jx ports).
_FILES = {"small": "vit_small_p16_224-15ec54c9.pth", "base": "jx_vit_base_p16_224-80ecf9dd.pth"}


@BACKBONE_REGISTRY.register()
def build_vit_backbone(cfg) -> VisionTransformer:
    """ViT 'small' / 'base' (MODEL.BACKBONE.DEPTH) laid out for INPUT.SIZE_TRAIN.

    Reads STRIDE_SIZE, DROP_RATIO, ATT_DROP_RATE, DROP_PATH_RATIO, SIE_COE, PRETRAIN and PRETRAIN_PATH of
    MODEL.BACKBONE. SIE stays off: the Baseline meta-architecture passes no camera ids.
    """
    bb = cfg.MODEL.BACKBONE
    depth = str(bb.DEPTH)
    if depth not in _ARCHS:
        raise ValueError(f"MODEL.BACKBONE.DEPTH '{depth}' is not a ViT variant; expected one of {sorted(_ARCHS)}")
    # Find the weight file before spending time on building ViT-base.
    path = resolve_pretrained_path(bb.PRETRAIN_PATH, [_FILES[depth]]) if bb.PRETRAIN else None
    model = VisionTransformer(
        img_size=cfg.INPUT.SIZE_TRAIN,
        stride_size=bb.STRIDE_SIZE,
        drop_rate=bb.DROP_RATIO,
        attn_drop_rate=bb.ATT_DROP_RATE,
        drop_path_rate=bb.DROP_PATH_RATIO,
        sie_coe=bb.SIE_COE,
        **_ARCHS[depth],
    )
    if path is not None:
        load_vit_pretrained(model, path)
    return model
