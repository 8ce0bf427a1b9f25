"""Reading torchreid (deep-person-reid) checkpoints as fastreid checkpoints.

torchreid's engine saves ``model.pth.tar-N`` as ``{"state_dict", "epoch", "rank1", "optimizer",
"scheduler"}``, its model zoo files are bare state dicts, and models trained under ``DataParallel`` prefix every
key with ``module.``. Its key names are those of one flat module (ResNet's ``conv1.weight``, ``layer4.2.bn3.bias``;
OSNet's ``conv1.conv.weight``, ``conv2.0.conv2b.1.bn.bias``, ``pool2.0.conv.weight``; then ``fc.0.weight`` and
``classifier.weight``); fastreid's models hold the same modules under ``backbone.`` (the convolutional part, up to
OSNet's ``conv5``) and ``heads.`` (:class:`fastreid.modeling.heads.TorchreidHead`: ``fc``, ``classifier``), so each
key is mapped onto the key of the model being loaded that it names. Where torchreid's network is one fastreid
builds from a library's blocks under the library's names (MobileNetV2), the keys are renamed first
(:data:`fastreid.modeling.layouts.backbone_files.TORCHREID_BACKBONES`).
"""
import logging
from typing import Any, Dict, Mapping, Optional, Set

import torch

from fastreid.utils.checkpoint_layouts import CHECKPOINT_LAYOUT_REGISTRY, model_key

from .backbone_files import TORCHREID_BACKBONES, rename_keys

__all__ = ["torchreid"]

logger = logging.getLogger(__name__)

# Where fastreid's meta-architectures keep the modules that torchreid's models hold at the top level.
_PREFIXES = ("backbone.", "heads.")
# Entries of torchreid's file that are not weights; they are kept, renamed, as metadata only (the epoch count
# is not fastreid's iteration or 0-based epoch, so it must not be read as either when resuming).
_METADATA = {"epoch": "torchreid_epoch", "rank1": "torchreid_rank1"}


def _strip_module(state_dict: Mapping[str, Any]) -> Dict[str, Any]:
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state_dict.items()}


def _is_torchreid_state_dict(state_dict: Any) -> bool:
    """A dict of tensors with a top-level classifier (``classifier.weight``, or PCB's ``classifier.0.weight``,
    HACNN's ``classifier_global.weight``) and none of fastreid's module prefixes."""
    if not isinstance(state_dict, Mapping) or not state_dict:
        return False
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()):
        return False
    keys = _strip_module(state_dict)
    has_classifier = any(k.startswith("classifier") and k.endswith(".weight") for k in keys)
    return has_classifier and not any(k.startswith(_PREFIXES) for k in keys)


@CHECKPOINT_LAYOUT_REGISTRY.register()
def torchreid(checkpoint: Dict[str, Any], model_keys: Set[str]) -> Optional[Dict[str, Any]]:
    """torchreid's checkpoint ``{"state_dict": ..., "epoch": ..., ...}`` or bare state dict, in fastreid's layout.

    Args:
        checkpoint: a loaded file.
        model_keys: state-dict keys of the fastreid model being loaded.

    Returns:
        ``None`` when the file is not torchreid's (any file with a ``"model"`` entry, as fastreid writes, or
        whose weights are not named as torchreid names them); else ``{"model": state dict with the model's key
        names, "torchreid_epoch": N, "torchreid_rank1": r}`` (metadata when the file has it). torchreid's
        optimizer and scheduler states do not fit fastreid's and are dropped, with one INFO line.
    """
    if "model" in checkpoint:
        return None
    wrapped = "state_dict" in checkpoint
    state_dict = checkpoint["state_dict"] if wrapped else checkpoint
    if not _is_torchreid_state_dict(state_dict):
        return None
    state_dict = _strip_module(state_dict)
    layout = next((layout for layout in TORCHREID_BACKBONES if layout.recognises(state_dict)), None)
    if layout is not None:
        logger.info("Reading torchreid's %s key names", layout.name)
        state_dict = rename_keys(state_dict, layout)
    converted: Dict[str, Any] = {"model": {model_key(k, model_keys): v for k, v in state_dict.items()}}
    if not wrapped:
        return converted
    for key, name in _METADATA.items():
        if key in checkpoint:
            value = checkpoint[key]
            converted[name] = value.item() if hasattr(value, "item") else value
    dropped = sorted(k for k in checkpoint if k != "state_dict" and k not in _METADATA)
    if dropped:
        logger.info("torchreid checkpoint: %s not loaded (fastreid's optimizer and schedule start afresh)",
                    ", ".join(dropped))
    return converted
