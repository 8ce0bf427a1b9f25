"""The reid head registry and ``build_heads``."""
from torch import nn

from fastreid.utils.registry import Registry

__all__ = ["REID_HEADS_REGISTRY", "build_heads"]

REID_HEADS_REGISTRY = Registry("REID_HEADS")
REID_HEADS_REGISTRY.__doc__ = """Reid heads by class name (MODEL.HEADS.NAME), built as ``cls(cfg, in_channels)``
where ``in_channels`` is the backbone's ``out_channels``. A head maps the B×C×h×w feature map to, in eval
mode, B×D features and, in training mode, a dict with "cls_outputs", "pred_class_logits" and "features"."""


def build_heads(cfg, in_channels: int) -> nn.Module:
    """Build the head named by ``cfg.MODEL.HEADS.NAME`` on top of ``in_channels`` backbone channels."""
    head = REID_HEADS_REGISTRY.get(cfg.MODEL.HEADS.NAME)(cfg, in_channels)
    if not isinstance(head, nn.Module):
        raise TypeError(f"Head '{cfg.MODEL.HEADS.NAME}' built {type(head).__name__}, not an nn.Module")
    return head
