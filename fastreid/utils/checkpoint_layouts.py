"""Checkpoints written by other re-id frameworks, read as fastreid checkpoints.

A converter recognises one framework's file layout (its top-level keys and parameter names) and returns the
same weights as a fastreid checkpoint ``{"model": state_dict, ...}`` whose keys match fastreid's model; the
:class:`~fastreid.utils.checkpoint.Checkpointer` tries every registered converter on each file it loads, so
``MODEL.WEIGHTS their.pth`` works without renaming by hand. Converters are registered where the key names are
known (``fastreid.modeling``).
"""
import logging
from typing import Any, Callable, Collection, Dict, Optional, Set, Tuple

from .registry import Registry

__all__ = ["CHECKPOINT_LAYOUT_REGISTRY", "NESTING_PREFIXES", "LayoutConverter", "model_key", "to_fastreid_layout"]

logger = logging.getLogger(__name__)

LayoutConverter = Callable[[Dict[str, Any], Set[str]], Optional[Dict[str, Any]]]

CHECKPOINT_LAYOUT_REGISTRY = Registry("CHECKPOINT_LAYOUT")
CHECKPOINT_LAYOUT_REGISTRY.__doc__ = """Converters of other frameworks' checkpoint layouts, by name.

An entry is ``converter(checkpoint, model_keys) -> dict or None``: ``checkpoint`` is the loaded file (a dict),
``model_keys`` the state-dict keys of the model being loaded. It returns ``None`` when the file is not in its
layout (a fastreid file must never be recognised), else a new fastreid checkpoint: ``{"model": state dict with
fastreid key names}`` plus whatever else of the file fastreid can use (e.g. ``"iteration"``); entries that would
not load into fastreid's own objects (another framework's optimizer state) are left out.
"""


NESTING_PREFIXES = ("backbone.", "heads.", "body.", "backbone.body.")
"""Where fastreid nests modules that other frameworks keep at the top level: the meta-architectures' ``backbone``
and ``heads``, and the timm / torchvision adapters' ``body`` (the library's network)."""


def model_key(key: str, model_keys: Collection[str]) -> str:
    """The key of the model that ``key`` (named as in a network kept at the top level) stands for.

    Args:
        key: a state-dict key of another framework's file, e.g. ``features.0.0.weight``.
        model_keys: the state-dict keys of the model being loaded.

    Returns:
        ``key`` when the model has it, else the first ``prefix + key`` of :data:`NESTING_PREFIXES` that the model
        has (``body.features.0.0.weight``), else ``key`` unchanged (it will be reported as not in the model).
    """
    if key in model_keys:
        return key
    return next((p + key for p in NESTING_PREFIXES if p + key in model_keys), key)


def to_fastreid_layout(checkpoint: Dict[str, Any], model_keys: Set[str]) -> Tuple[Dict[str, Any], Optional[str]]:
    """``checkpoint`` converted by the first registered converter that recognises it.

    Args:
        checkpoint: a loaded checkpoint file (a dict).
        model_keys: the state-dict keys of the model it is loaded into.

    Returns:
        ``(checkpoint, name)``: the converted checkpoint and the converter's name, or the input unchanged and
        ``None`` when no converter recognises it (a fastreid checkpoint or a bare state dict).
    """
    for name in sorted(CHECKPOINT_LAYOUT_REGISTRY.names()):
        converted = CHECKPOINT_LAYOUT_REGISTRY.get(name)(checkpoint, model_keys)
        if converted is not None:
            return converted, name
    return checkpoint, None
