"""The meta-architecture registry and ``build_model``."""
import logging

from torch import nn

from fastreid.utils.env import resolve_device
from fastreid.utils.registry import Registry

__all__ = ["META_ARCH_REGISTRY", "build_model"]

logger = logging.getLogger(__name__)

META_ARCH_REGISTRY = Registry("META_ARCH")
META_ARCH_REGISTRY.__doc__ = """Whole models by class name (MODEL.META_ARCHITECTURE), built as ``cls(cfg)``.

A meta-architecture takes ``{"images": B×3×H×W float 0-255, "targets": B long}``; in training mode it
returns a dict of scalar loss terms ``loss_<term>``, in eval mode the B×D features."""


def build_model(cfg) -> nn.Module:
    """Build the model named by ``cfg.MODEL.META_ARCHITECTURE`` on ``cfg.MODEL.DEVICE``.

    Set ``cfg.MODEL.HEADS.NUM_CLASSES`` to the number of training identities first (the trainer does this
    from the training set); 0 is only usable in eval mode.

    Raises:
        KeyError: for an unregistered name.
        ValueError: when MODEL.DEVICE is not available here (suggesting ``MODEL.DEVICE cpu``).
    """
    device = resolve_device(cfg.MODEL.DEVICE)
    model = META_ARCH_REGISTRY.get(cfg.MODEL.META_ARCHITECTURE)(cfg)
    if not isinstance(model, nn.Module):
        raise TypeError(f"Meta-architecture '{cfg.MODEL.META_ARCHITECTURE}' built {type(model).__name__}")
    model.to(device)
    if cfg.MODEL.CHANNELS_LAST:
        if not hasattr(model, "use_channels_last"):
            raise ValueError(f"MODEL.CHANNELS_LAST is set but {type(model).__name__} has no use_channels_last()")
        model.use_channels_last()
    logger.info("Built %s on %s%s", type(model).__name__, device, " (channels-last)" if cfg.MODEL.CHANNELS_LAST else "")
    return model
