"""torchreid's checkpoint and layer tools (``torchreid.utils.torchtools``) on fastreid's checkpoint code.

Files are read with :func:`fastreid.utils.checkpoint.read_checkpoint` (CPU, ``weights_only``) and written
atomically with :func:`fastreid.utils.file_io.atomic_write`. Weights saved by torchreid itself (its key names,
``conv1.weight`` ... ``classifier.weight``) load into a :class:`fastreid.torchreid.models.TorchreidModel`
(fastreid's ``backbone.*`` / ``heads.*``) through fastreid's registered checkpoint layouts
(:func:`fastreid.utils.checkpoint_layouts.to_fastreid_layout`), as ``Checkpointer`` reads them. Layers are
named as torchreid names them (:func:`fastreid.torchreid.models.named_layers`).
"""
import logging
import os
import shutil
from collections import OrderedDict
from typing import Any, BinaryIO, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from fastreid.torchreid.models import named_layers
from fastreid.utils.checkpoint import read_checkpoint
from fastreid.utils.checkpoint_layouts import to_fastreid_layout
from fastreid.utils.file_io import atomic_write

__all__ = [
    "count_num_param",
    "load_checkpoint",
    "load_pretrained_weights",
    "open_all_layers",
    "open_specified_layers",
    "resume_from_checkpoint",
    "save_checkpoint",
]

logger = logging.getLogger(__name__)

_MODULE_PREFIX = "module."


def _unwrap(model: nn.Module) -> nn.Module:
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        return model.module
    return model


def _strip_module(state_dict: Mapping[str, Any]) -> "OrderedDict[str, Any]":
    """``state_dict`` without the ``module.`` prefix that (Distributed)DataParallel puts on every key."""
    return OrderedDict(
        (k[len(_MODULE_PREFIX):] if k.startswith(_MODULE_PREFIX) else k, v) for k, v in state_dict.items()
    )


def _copy_into(source: str, f: BinaryIO) -> None:
    with open(source, "rb") as src:
        shutil.copyfileobj(src, f)


def save_checkpoint(
    state: Dict[str, Any], save_dir: str, is_best: bool = False, remove_module_from_keys: bool = False
) -> str:
    """Write ``state`` to ``save_dir/model.pth.tar-{state['epoch']}`` (torchreid's naming), atomically.

    Args:
        state: ``{"state_dict", "epoch", ...}`` (the engine adds ``rank1``, ``optimizer``, ``scheduler``).
        save_dir: folder, created when missing.
        is_best: also copy the file to ``save_dir/model-best.pth.tar``.
        remove_module_from_keys: strip the ``module.`` prefix of a (Distributed)DataParallel model's keys.

    Returns:
        The path written.

    Raises:
        KeyError: if ``state`` has no ``"epoch"`` or ``"state_dict"``.
    """
    missing = [k for k in ("state_dict", "epoch") if k not in state]
    if missing:
        raise KeyError(f"save_checkpoint: state lacks {missing}; pass {{'state_dict': model.state_dict(), "
                       f"'epoch': N, ...}}")
    os.makedirs(save_dir, exist_ok=True)
    if remove_module_from_keys:
        state = {**state, "state_dict": _strip_module(state["state_dict"])}
    fpath = os.path.join(save_dir, f"model.pth.tar-{state['epoch']}")
    atomic_write(fpath, lambda f: torch.save(state, f))
    logger.info("Checkpoint saved to %s", fpath)
    if is_best:
        best = os.path.join(save_dir, "model-best.pth.tar")
        atomic_write(best, lambda f: _copy_into(fpath, f))
        logger.info("Best checkpoint copied to %s", best)
    return fpath


def load_checkpoint(fpath: str) -> Dict[str, Any]:
    """Load a checkpoint onto the CPU (torchreid's ``load_checkpoint``).

    Args:
        fpath: a file saved by :func:`save_checkpoint`, torchreid or ``torch.save``.

    Returns:
        The loaded object: a checkpoint dict, or a bare state dict.

    Raises:
        FileNotFoundError: if ``fpath`` is not a file.
        ValueError: if it is not a readable PyTorch checkpoint (the message says what it is instead).
    """
    if not fpath:
        raise ValueError("load_checkpoint: the file path is empty; pass the path of a checkpoint file")
    if not os.path.isfile(fpath):
        raise FileNotFoundError(f"Checkpoint file not found: '{fpath}'; check the path (torchreid saves "
                                f"save_dir/model/model.pth.tar-EPOCH)")
    return read_checkpoint(fpath)


def _weights_of(checkpoint: Any, fpath: str) -> "OrderedDict[str, Any]":
    """The state dict inside a checkpoint dict (torchreid's ``"state_dict"``, fastreid's ``"model"``) or the
    bare state dict, ``module.`` removed."""
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"{fpath} holds a {type(checkpoint).__name__}, not a checkpoint dict or state dict")
    key = next((k for k in ("state_dict", "model") if isinstance(checkpoint.get(k), Mapping)), None)
    return _strip_module(checkpoint[key] if key else checkpoint)


def _in_model_layout(state_dict: "OrderedDict[str, Any]", model: nn.Module) -> "OrderedDict[str, Any]":
    """``state_dict`` renamed to ``model``'s keys when it is another framework's layout (e.g. torchreid's
    ``layer4.*`` for a :class:`TorchreidModel`'s ``backbone.layer4.*``); unchanged otherwise."""
    converted, layout = to_fastreid_layout({"state_dict": state_dict}, set(model.state_dict()))
    if layout is None:
        return state_dict
    logger.info("Read %s's key names", layout)
    return OrderedDict(converted["model"])


def resume_from_checkpoint(
    fpath: str, model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None, scheduler: Optional[Any] = None
) -> int:
    """Restore a training run saved by :func:`save_checkpoint` (or torchreid's engine).

    Args:
        fpath: the checkpoint ``model.pth.tar-N``.
        model: receives ``state_dict`` (``module.`` prefixes removed; torchreid key names mapped); all keys
            must fit.
        optimizer: receives the saved ``optimizer`` state, when both are present.
        scheduler: receives the saved ``scheduler`` state, when both are present.

    Returns:
        The saved epoch: ``start_epoch`` for ``engine.run`` (training continues with the next epoch).

    Raises:
        FileNotFoundError, ValueError: as :func:`load_checkpoint`.
        KeyError: if the file has no ``epoch`` (a bare state dict: use :func:`load_pretrained_weights`).
    """
    logger.info("Loading checkpoint from %s", fpath)
    checkpoint = load_checkpoint(fpath)
    if not isinstance(checkpoint, Mapping) or "epoch" not in checkpoint:
        raise KeyError(f"{fpath} has no 'epoch': it is not a training checkpoint; load weights only with "
                       f"load_pretrained_weights(model, '{fpath}')")
    target = _unwrap(model)
    target.load_state_dict(_in_model_layout(_weights_of(checkpoint, fpath), target))
    logger.info("Loaded model weights")
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler)):
        if obj is not None and checkpoint.get(name) is not None:
            obj.load_state_dict(checkpoint[name])
            logger.info("Loaded %s", name)
        elif obj is not None:
            logger.warning("%s has no %s state; %s starts afresh", fpath, name, name)
    start_epoch = int(checkpoint["epoch"])
    rank1 = checkpoint.get("rank1")
    logger.info("Last epoch = %d", start_epoch)
    if rank1 is not None:
        logger.info("Last rank1 = %.1f%%", float(rank1) * 100)
    return start_epoch


def load_pretrained_weights(model: nn.Module, weight_path: str) -> Tuple[List[str], List[str]]:
    """Load the weights of ``weight_path`` that fit ``model``, leaving the rest (torchreid's semantics).

    Accepts a checkpoint dict with ``state_dict`` (torchreid) or ``model`` (fastreid's ``Checkpointer``), or a
    bare state dict; ``module.`` prefixes are removed and
    torchreid's key names are mapped onto a :class:`~fastreid.torchreid.models.TorchreidModel`'s. A weight
    loads only when the model has its key with the same shape; the others (e.g. a classifier trained on
    another number of identities) are listed in a warning, and a file of which nothing fits gives a warning
    saying so.

    Args:
        model: the model to fill (a (Distributed)DataParallel wrapper is unwrapped).
        weight_path: the file.

    Returns:
        ``(loaded, discarded)``: the model keys loaded and the file's keys skipped.

    Raises:
        FileNotFoundError, ValueError: as :func:`load_checkpoint`.
    """
    target = _unwrap(model)
    state_dict = _in_model_layout(_weights_of(load_checkpoint(weight_path), weight_path), target)
    model_dict = target.state_dict()
    matched: "OrderedDict[str, Any]" = OrderedDict()
    discarded: List[str] = []
    for key, value in state_dict.items():
        fits = key in model_dict and isinstance(value, torch.Tensor) and model_dict[key].shape == value.shape
        if fits:
            matched[key] = value
        else:
            discarded.append(key)
    if not matched:
        logger.warning('The pretrained weights "%s" cannot be loaded: no key of the file matches the model with '
                       'the same shape (check the key names). The model keeps its weights.', weight_path)
        return [], discarded
    model_dict.update(matched)
    target.load_state_dict(model_dict)
    logger.info('Successfully loaded pretrained weights from "%s" (%d of %d model tensors)', weight_path,
                len(matched), len(model_dict))
    if discarded:
        logger.warning("The following layers are discarded due to unmatched keys or layer size: %s", discarded)
    return list(matched), discarded


def _as_names(open_layers: Union[str, Sequence[str], None]) -> List[str]:
    if open_layers is None:
        return []
    return [open_layers] if isinstance(open_layers, str) else list(open_layers)


def open_all_layers(model: nn.Module) -> None:
    """Train mode and ``requires_grad=True`` for every layer of ``model``."""
    model.train()
    for p in model.parameters():
        p.requires_grad = True


def open_specified_layers(model: nn.Module, open_layers: Union[str, Sequence[str]]) -> None:
    """Train only ``open_layers`` (torchreid's fixbase epochs): they get ``train()`` and ``requires_grad=True``,
    every other layer ``eval()`` and ``requires_grad=False``.

    Args:
        model: a :class:`~fastreid.torchreid.models.TorchreidModel` or any torchreid-style module (possibly
            wrapped in (Distributed)DataParallel).
        open_layers: a layer name or list of names, as :func:`fastreid.torchreid.models.named_layers` lists
            them (``classifier``, ``fc``, ``layer4``, ...).

    Raises:
        ValueError: for a name the model does not have, listing the available names.
    """
    names = _as_names(open_layers)
    layers = named_layers(model)
    unknown = [n for n in names if n not in layers]
    if unknown:
        raise ValueError(f"open_layers {unknown} are not layers of the model; available: {list(layers)}")
    for p in _unwrap(model).parameters():
        p.requires_grad = False
    # Only the named layers change mode: the containers keep theirs (a TorchreidModel or its head in eval
    # mode would return features instead of logits).
    for name, layer in layers.items():
        layer.train(name in names)
    for name in names:
        for p in layers[name].parameters():
            p.requires_grad = True


def count_num_param(model: nn.Module) -> int:
    """Parameters of ``model`` without its ``classifier`` (unused at test time), as torchreid counts them."""
    total = sum(p.numel() for p in model.parameters())
    classifier = named_layers(model).get("classifier")
    if isinstance(classifier, nn.Module):
        total -= sum(p.numel() for p in classifier.parameters())
    return total
