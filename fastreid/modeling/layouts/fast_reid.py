"""Reading checkpoints written by fast-reid (JDAI-CV/fast-reid, e.g. its model zoo) as fastreid checkpoints.

fast-reid saves ``{"model": state_dict, "optimizer": ..., "lr_sched": ..., "warmup_sched": ..., "epoch": ...,
"metric": ...}``. Its parameter names are fastreid's except for the identity classifiers: the
``EmbeddingHead`` owns its class centres as ``heads.weight`` (fastreid: ``heads.classifier.weight``) and MGN
names its heads ``b1_head`` … ``b33_head`` (fastreid: ``heads.b1`` … ``heads.b33``). Older versions also
saved the ``pixel_mean`` / ``pixel_std`` buffers, which fastreid takes from MODEL.PIXEL_MEAN / PIXEL_STD.

fast-reid wrote some backbones itself (MobileNetV2, and pycls's RegNet and EfficientNet) where fastreid builds
the libraries' networks, and fastreid nests torchvision's and timm's networks under ``body.``: the ``backbone.*``
keys of such a checkpoint are renamed by the backbone layouts of
:mod:`fastreid.modeling.layouts.backbone_files` and mapped onto the model's backbone (MobileNetV3:
``backbone.features.*`` → ``backbone.body.features.*``).
"""
import logging
import re
from collections import OrderedDict
from typing import Any, Dict, Optional, Set

import torch

from fastreid.utils.checkpoint_layouts import CHECKPOINT_LAYOUT_REGISTRY

from .backbone_files import FAST_REID_BACKBONES, to_model_keys

__all__ = ["fast_reid", "from_fast_reid_key"]

logger = logging.getLogger(__name__)

_MGN_HEAD = re.compile(r"^(b\d+)_head\.(.*)$")
_PIXEL_STATS = ("pixel_mean", "pixel_std")
# Entries of a fast-reid file kept as metadata, renamed so that no one takes fast-reid's epoch for fastreid's
# (fastreid resumes from "iteration"); the rest (optimizer, LR schedulers) are left out.
_KEPT = {"epoch": "fast_reid_epoch", "metric": "fast_reid_metric"}


def from_fast_reid_key(key: str) -> str:
    """fastreid's name for the fast-reid state-dict key ``key`` (most names are the same).

    ``heads.weight`` → ``heads.classifier.weight``; ``b21_head.weight`` → ``heads.b21.classifier.weight``;
    ``b21_head.<rest>`` → ``heads.b21.<rest>``.
    """
    if key == "heads.weight":
        return "heads.classifier.weight"
    match = _MGN_HEAD.match(key)
    if match:
        branch, rest = match.groups()
        return f"heads.{branch}.classifier.weight" if rest == "weight" else f"heads.{branch}.{rest}"
    return key


_BACKBONE = "backbone."


def _backbone_state(state: Dict[str, Any]) -> Dict[str, Any]:
    return {key[len(_BACKBONE):]: value for key, value in state.items() if key.startswith(_BACKBONE)}


def _is_fast_reid_layout(state: Dict[str, Any], model_keys: Set[str]) -> bool:
    # fastreid's own heads keep their class centres in a `classifier` sub-module, so these names never occur
    # in a fastreid checkpoint (unless a custom model really has them, which `model_keys` tells); nor do the
    # keys of fast-reid's own backbones, which fastreid builds from the libraries' networks.
    if any((key == "heads.weight" or _MGN_HEAD.match(key)) and key not in model_keys for key in state):
        return True
    backbone = _backbone_state(state)
    return any(layout.recognises(backbone) for layout in FAST_REID_BACKBONES) and not set(state) <= model_keys


def _renamed(state: Dict[str, Any], model_keys: Set[str]) -> "OrderedDict[str, Any]":
    """fast-reid's state dict with fastreid's names: the heads by :func:`from_fast_reid_key`, the backbone's
    keys by the layout of fast-reid's own network (if it is one) and fastreid's nesting of the library's."""
    inner_keys = {key[len(_BACKBONE):] for key in model_keys if key.startswith(_BACKBONE)}
    backbone = to_model_keys(_backbone_state(state), inner_keys, FAST_REID_BACKBONES)
    converted = OrderedDict((_BACKBONE + key, value) for key, value in backbone.items())
    converted.update((from_fast_reid_key(key), value) for key, value in state.items()
                     if not key.startswith(_BACKBONE) and key not in _PIXEL_STATS)
    return converted


@CHECKPOINT_LAYOUT_REGISTRY.register()
def fast_reid(checkpoint: Dict[str, Any], model_keys: Set[str]) -> Optional[Dict[str, Any]]:
    """A fast-reid checkpoint in fastreid's layout, or None when ``checkpoint`` is not one.

    Args:
        checkpoint: a loaded file: ``{"model": state_dict, ...}`` as fast-reid's Checkpointer writes it.
        model_keys: the state-dict keys of the model it is loaded into.

    Returns:
        ``{"model": state dict with fastreid key names, "fast_reid_epoch": ..., "fast_reid_metric": ...}``
        (the last two when in the file). fast-reid's optimizer and LR-scheduler states are left out (one INFO
        line): its optimizer lists the parameters in another order and groups, so they do not map onto fastreid's.
    """
    state = checkpoint.get("model")
    if not isinstance(state, dict) or not _is_fast_reid_layout(state, model_keys):
        return None
    if state and all(key.startswith("module.") for key in state):  # saved from a DataParallel wrapper
        state = {key[len("module."):]: value for key, value in state.items()}
    stats = {key: state[key] for key in _PIXEL_STATS if isinstance(state.get(key), torch.Tensor)}
    if stats:
        logger.info(
            "The fast-reid checkpoint normalised images with pixel mean %s and std %s; fastreid uses "
            "MODEL.PIXEL_MEAN / MODEL.PIXEL_STD, which must match them to reproduce its features.",
            *(stats[key].flatten().tolist() if key in stats else "-" for key in _PIXEL_STATS),
        )
    converted = _renamed(state, model_keys)
    dropped = sorted(key for key in checkpoint if key != "model" and key not in _KEPT)
    if dropped:
        logger.info(
            "fast-reid checkpoint: %s not restored (fast-reid's optimizer orders and groups parameters "
            "differently); training continues with fresh ones.",
            ", ".join(dropped),
        )
    out: Dict[str, Any] = {"model": converted}
    out.update({name: checkpoint[key] for key, name in _KEPT.items() if key in checkpoint})
    return out
