"""Models: backbones, heads, losses and meta-architectures, each behind its own registry.

Build a model with ``build_model(cfg)``; extend any part by registering into ``BACKBONE_REGISTRY``,
``REID_HEADS_REGISTRY``, ``LOSS_REGISTRY``, ``META_ARCH_REGISTRY`` or ``TEMPORAL_POOL_REGISTRY`` from a module imported before building.
"""
from .backbones import BACKBONE_REGISTRY, build_backbone
from .heads import REID_HEADS_REGISTRY, build_heads
from .losses import LOSS_REGISTRY, build_losses
from .meta_arch import META_ARCH_REGISTRY, build_model
from .temporal_pool import TEMPORAL_POOL_REGISTRY, build_temporal_pool
from . import layouts  # noqa: F401 - registers fast-reid's and torchreid's checkpoint layouts

__all__ = [
    "BACKBONE_REGISTRY",
    "LOSS_REGISTRY",
    "META_ARCH_REGISTRY",
    "REID_HEADS_REGISTRY",
    "TEMPORAL_POOL_REGISTRY",
    "build_backbone",
    "build_heads",
    "build_losses",
    "build_model",
    "build_temporal_pool",
]
