"""Loading pretrained weights into a module: locating the file, matching keys and reporting mismatches.

The one shared helper for every backbone. Nothing is ever downloaded: a weight file is either given by path or
found in the torch hub cache (``torch.hub.get_dir()/checkpoints``), where torchvision and timm leave them.
"""
import glob
import logging
import os
from collections import OrderedDict
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Union

import torch
from tabulate import tabulate
from torch import nn

from fastreid.utils.checkpoint import read_checkpoint
from fastreid.utils.file_io import PathManager

__all__ = [
    "IncompatibleWeights",
    "extract_state_dict",
    "find_in_hub_cache",
    "init_pretrained",
    "load_pretrained_weights",
    "resolve_pretrained_path",
]

logger = logging.getLogger(__name__)


class IncompatibleWeights(NamedTuple):
    """Keys of a partial load: absent from the file, not in the model, or of another shape."""

    missing: List[str]
    unexpected: List[str]
    shape_mismatch: List[str]


def find_in_hub_cache(file_names: Sequence[str]) -> str:
    """Find a pretrained file in the torch hub cache without downloading.

    Args:
        file_names: accepted file names, preferred first. A name ``<arch>-<hash>.pth`` also accepts any other
            hash of the same ``<arch>`` (weights re-released under a new hash).

    Returns:
        str: path of the first file found.

    Raises:
        FileNotFoundError: naming the file to provide, the folder searched and how to train from scratch.
    """
    cache_dir = os.path.join(torch.hub.get_dir(), "checkpoints")
    for name in file_names:
        path = os.path.join(cache_dir, name)
        if os.path.isfile(path):
            return path
    for name in file_names:
        stem = name[: -len(".pth")] if name.endswith(".pth") else name
        arch = stem.rsplit("-", 1)[0]
        found = sorted(glob.glob(os.path.join(cache_dir, glob.escape(arch) + "-*.pth")))
        if found:
            return found[0]
    raise FileNotFoundError(
        f"Pretrained weights '{file_names[0]}' not found in the torch hub cache {cache_dir} and fastreid never "
        f"downloads. Put the file there, or give its path with MODEL.BACKBONE.PRETRAIN_PATH, or train from "
        f"scratch with MODEL.BACKBONE.PRETRAIN False."
    )


def init_pretrained(
    module: nn.Module, pretrain: bool, pretrain_path: str, file_names: Sequence[str]
) -> Optional[IncompatibleWeights]:
    """The backbones' common pretraining step (MODEL.BACKBONE.PRETRAIN / PRETRAIN_PATH).

    Args:
        module: the freshly built backbone.
        pretrain: load weights at all; False trains from scratch.
        pretrain_path: a local weight file; "" looks for ``file_names`` in the torch hub cache.
        file_names: the hub-cache file names of the backbone's ImageNet weights, preferred first.

    Returns:
        The keys that did not load, or None when ``pretrain`` is False.
    """
    if not pretrain:
        return None
    path = resolve_pretrained_path(pretrain_path, file_names)
    # ImageNet classifiers are not part of a reid backbone.
    return load_pretrained_weights(module, path, ignore_unexpected=("fc.weight", "fc.bias"))


def resolve_pretrained_path(pretrain_path: str, file_names: Sequence[str]) -> str:
    """The file to load: ``pretrain_path`` when given (it must exist), else one found in the hub cache."""
    if pretrain_path:
        if not PathManager.exists(pretrain_path):
            raise FileNotFoundError(
                f"MODEL.BACKBONE.PRETRAIN_PATH '{pretrain_path}' does not exist. Fix the path, or train from "
                f"scratch with MODEL.BACKBONE.PRETRAIN False."
            )
        return pretrain_path
    return find_in_hub_cache(file_names)


def extract_state_dict(checkpoint: Union[Dict, nn.Module]) -> Dict[str, torch.Tensor]:
    """The tensors of a loaded weights file: a bare state_dict, a module, or a training checkpoint
    (``{"model": ...}`` / ``{"state_dict": ...}``)."""
    if isinstance(checkpoint, nn.Module):
        return checkpoint.state_dict()
    for key in ("model", "state_dict"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    state = OrderedDict()
    for k, v in checkpoint.items():
        if not isinstance(v, torch.Tensor):
            continue
        state[k[len("module."):] if k.startswith("module.") else k] = v
    return state


def _report(
    incompatible: IncompatibleWeights, shapes: Dict[str, str], source: str, ignore: Iterable[str]
) -> None:
    rows = [("missing in file", k, "") for k in incompatible.missing]
    rows += [("not in model", k, "") for k in incompatible.unexpected if k not in ignore]
    rows += [("shape mismatch", k, shapes[k]) for k in incompatible.shape_mismatch]
    if not rows:
        logger.info("Loaded all weights from %s", source)
        return
    logger.warning(
        "Weights from %s loaded with %d mismatches (left as initialised):\n%s",
        source,
        len(rows),
        tabulate(rows, headers=["problem", "key", "file vs model shape"]),
    )


def load_pretrained_weights(
    module: nn.Module,
    checkpoint: Union[str, Dict[str, torch.Tensor]],
    ignore_unexpected: Iterable[str] = (),
) -> IncompatibleWeights:
    """Copy matching tensors into ``module`` and log one table of what did not match.

    Args:
        module: the model to fill.
        checkpoint: a file path (state_dict or a checkpoint holding one under "model"/"state_dict"; a
            "module." prefix from DataParallel is stripped) or a state_dict.
        ignore_unexpected: keys expected in the file but not in the model (e.g. an ImageNet classifier),
            left out of the report.

    Returns:
        IncompatibleWeights: the keys left untouched.
    """
    source = checkpoint if isinstance(checkpoint, str) else "a state_dict"
    if isinstance(checkpoint, str):
        checkpoint = read_checkpoint(PathManager.get_local_path(checkpoint))
    state = extract_state_dict(checkpoint)
    own = module.state_dict()
    mismatch = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    loadable = {k: v for k, v in state.items() if k in own and k not in mismatch}
    module.load_state_dict(loadable, strict=False)
    incompatible = IncompatibleWeights(
        missing=[k for k in own if k not in state and not k.endswith("num_batches_tracked")],
        unexpected=[k for k in state if k not in own],
        shape_mismatch=mismatch,
    )
    shapes = {k: f"{tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in mismatch}
    _report(incompatible, shapes, source, set(ignore_unexpected))
    return incompatible
