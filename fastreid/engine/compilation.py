"""Opt-in ``torch.compile`` of the model (MODEL.COMPILE), keeping its type and checkpoint keys."""
import logging

from torch import nn

__all__ = ["compile_model"]

logger = logging.getLogger(__name__)


def compile_model(model: nn.Module) -> nn.Module:
    """Compile ``model`` in place with ``nn.Module.compile`` (``torch.compile`` of its forward call).

    In place rather than ``torch.compile(model)``: the model keeps its class, attributes and ``state_dict``
    keys (no ``_orig_mod.`` prefix), so checkpoints stay loadable by uncompiled models and code that
    unwraps or inspects the model is unaffected. Compilation happens at the first call of each mode (train,
    eval) and input shape; the losses' logging (event storage) runs eagerly between compiled graphs.

    Args:
        model: the model, on its device, before any DDP wrapping.

    Returns:
        ``model`` itself.

    Raises:
        RuntimeError: when this torch build has no ``nn.Module.compile`` (torch < 2.2).
    """
    if not hasattr(model, "compile"):
        raise RuntimeError("MODEL.COMPILE needs torch >= 2.2 (nn.Module.compile); set MODEL.COMPILE False.")
    model.compile()
    logger.info("MODEL.COMPILE: %s compiled with torch.compile (compiles at its first calls)", type(model).__name__)
    return model
