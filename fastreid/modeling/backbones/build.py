"""The backbone registry and ``build_backbone``.

Backbone contract: an ``nn.Module`` whose ``forward(x)`` maps images B×3×H×W to the last feature map
B×C×h×w and whose ``out_channels`` attribute is C (an int). Heads read ``out_channels``; the config's
MODEL.BACKBONE.FEAT_DIM is only checked against it.
"""
import logging

from torch import nn

from fastreid.utils.registry import Registry

__all__ = ["BACKBONE_REGISTRY", "build_backbone"]

logger = logging.getLogger(__name__)

BACKBONE_REGISTRY = Registry("BACKBONE")
BACKBONE_REGISTRY.__doc__ = """Backbone builders ``build_<name>_backbone(cfg) -> nn.Module``, named by
MODEL.BACKBONE.NAME. The module maps B×3×H×W to B×C×h×w and reports C as ``out_channels``."""


def build_backbone(cfg) -> nn.Module:
    """Build the backbone named by ``cfg.MODEL.BACKBONE.NAME`` and check its contract.

    Raises:
        KeyError: for an unregistered name.
        TypeError: when the builder returns something that is not an ``nn.Module`` with an int
            ``out_channels``.
    """
    name = cfg.MODEL.BACKBONE.NAME
    backbone = BACKBONE_REGISTRY.get(name)(cfg)
    if not isinstance(backbone, nn.Module):
        raise TypeError(f"Backbone builder '{name}' returned {type(backbone).__name__}, not an nn.Module")
    out_channels = getattr(backbone, "out_channels", None)
    if not isinstance(out_channels, int) or isinstance(out_channels, bool) or out_channels <= 0:
        raise TypeError(
            f"Backbone built by '{name}' must report its output channels as an int attribute "
            f"`out_channels`; got {out_channels!r}"
        )
    if cfg.MODEL.BACKBONE.FEAT_DIM != out_channels:
        logger.warning(
            "MODEL.BACKBONE.FEAT_DIM is %s but backbone '%s' outputs %d channels; the heads use %d.",
            cfg.MODEL.BACKBONE.FEAT_DIM,
            name,
            out_channels,
            out_channels,
        )
    return backbone
