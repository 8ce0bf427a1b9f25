"""The meta-architecture registry and ``build_model``."""
import logging
from typing import Dict, Tuple

from torch import nn

from fastreid.utils.env import resolve_device
from fastreid.utils.registry import Registry

__all__ = ["META_ARCH_KEYS", "META_ARCH_REGISTRY", "build_model", "warn_unread_meta_arch_keys"]

logger = logging.getLogger(__name__)

META_ARCH_REGISTRY = Registry("META_ARCH")
META_ARCH_REGISTRY.__doc__ = """Whole models by class name (MODEL.META_ARCHITECTURE), built as ``cls(cfg)``.

A meta-architecture takes ``{"images": B×3×H×W float 0-255, "targets": B long}``; in training mode it
returns a dict of scalar loss terms ``loss_<term>``, in eval mode the B×D features."""


# Keys that only one meta-architecture (or its subclasses) reads: set away from their defaults for another model,
# they would be ignored, so build_model warns.
META_ARCH_KEYS: Dict[str, Tuple[str, ...]] = {
    "Distiller": ("KD.MODEL_CONFIG", "KD.MODEL_WEIGHTS", "KD.EMA.ENABLED", "KD.EMA.MOMENTUM", "KD.LOSS",
                  "KD.TEMPERATURE", "KD.SCALE"),
    "MoCo": ("MODEL.QUEUE_SIZE", "MODEL.MOCO.MOMENTUM", "MODEL.MOCO.MARGIN", "MODEL.MOCO.GAMMA", "MODEL.MOCO.SCALE"),
}


def warn_unread_meta_arch_keys(cfg, model: nn.Module) -> None:
    """Log a WARNING for each key of :data:`META_ARCH_KEYS` set away from its default while ``model`` is not the
    meta-architecture that reads it (e.g. KD.MODEL_CONFIG with MODEL.META_ARCHITECTURE Baseline)."""
    from fastreid.config import non_default_values

    for arch, keys in META_ARCH_KEYS.items():
        if arch not in META_ARCH_REGISTRY or isinstance(model, META_ARCH_REGISTRY.get(arch)):
            continue
        for key, value, _ in non_default_values(cfg, keys):
            logger.warning("%s = %r has no effect: only MODEL.META_ARCHITECTURE %s (or a subclass) reads it, and this "
                           "model is %s. Set MODEL.META_ARCHITECTURE %s, or remove the key.", key, value, arch,
                           type(model).__name__, arch)


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
    warn_unread_meta_arch_keys(cfg, model)
    model.to(device)
    if cfg.MODEL.CHANNELS_LAST:
        if not hasattr(model, "use_channels_last"):
            raise ValueError(f"MODEL.CHANNELS_LAST is set but {type(model).__name__} has no use_channels_last()")
        model.use_channels_last()
    logger.info("Built %s on %s%s", type(model).__name__, device, " (channels-last)" if cfg.MODEL.CHANNELS_LAST else "")
    return model
