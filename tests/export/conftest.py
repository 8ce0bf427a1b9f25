"""Tiny eval-mode models for the export tests, with every norm layer given non-trivial statistics."""
from typing import Sequence

import torch
from torch import nn

from fastreid.config import CfgNode
from fastreid.export import FeatureExtractor, build_export_model, export_cfg, random_images
from fastreid.modeling import BACKBONE_REGISTRY
from fastreid.modeling.backbones import VisionTransformer

INPUT_SIZE = (64, 32)


class _TinyBackbone(nn.Module):
    """Two strided convolutions, 3×H×W → 16×H/4×W/4, for exporting each pooling layer cheaply."""

    out_channels = 16

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@BACKBONE_REGISTRY.register()
def build_export_test_tiny_backbone(cfg) -> nn.Module:
    return _TinyBackbone()


@BACKBONE_REGISTRY.register()
def build_export_test_tiny_vit(cfg) -> nn.Module:
    """A 2-block, 32-wide ViT laid out for 256×128 with overlapping patches, so the 64×32 export input also
    runs the position-embedding interpolation."""
    return VisionTransformer(
        img_size=(256, 128), stride_size=(12, 12), embed_dim=32, depth=2, num_heads=4, drop_path_rate=0.1
    )


def randomize_norms(model: FeatureExtractor, seed: int = 0) -> FeatureExtractor:
    """Give norm layers random affine parameters, and BatchNorms the statistics of a random batch.

    Fresh norms are identities (and fastreid zero-initialises the non-local output norm, making the whole
    block an identity), so an export that dropped them could still match. Running statistics measured on
    data, layer by layer, also keep a deep random network's activations finite.
    """
    generator = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, (nn.modules.batchnorm._NormBase, nn.GroupNorm))]
    with torch.no_grad():
        for m in norms:
            if getattr(m, "weight", None) is not None:
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=generator))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=generator))

    def calibrate(module, inputs):
        x = inputs[0].transpose(0, 1).flatten(1)
        module.running_mean.copy_(x.mean(1))
        module.running_var.copy_(x.var(1))

    handles = [m.register_forward_pre_hook(calibrate) for m in norms if getattr(m, "running_mean", None) is not None]
    with torch.no_grad():
        model(random_images(4, INPUT_SIZE, seed=seed + 100))
    for handle in handles:
        handle.remove()
    return model


def model_cfg(opts: Sequence[str] = ()) -> CfgNode:
    """A CPU eval config at the 64×32 test input with ``opts`` overrides (no ImageNet weights)."""
    return export_cfg(opts=["INPUT.SIZE_TEST", str(list(INPUT_SIZE)), *opts])


def make_model(opts: Sequence[str] = (), seed: int = 0) -> FeatureExtractor:
    torch.manual_seed(seed)
    return randomize_norms(build_export_model(model_cfg(opts)), seed)
