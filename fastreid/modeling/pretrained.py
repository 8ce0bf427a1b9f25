"""Loading pretrained weights into a module: locating the file, matching keys and reporting mismatches.

The one shared helper for every backbone. MODEL.BACKBONE.PRETRAIN resolves a weight file, in order, from
MODEL.BACKBONE.PRETRAIN_PATH, the torch hub cache (``torch.hub.get_dir()/checkpoints``, i.e.
``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``, where torchvision and timm leave
their files too), and a download of a file listed in :data:`KNOWN_WEIGHTS` (URL and SHA-256), written into the
hub cache atomically and only once its digest is verified. Set ``FASTREID_OFFLINE=1`` to never download (tests
and CI do); files without a known URL are never downloaded.
"""
import glob
import hashlib
import http.client
import logging
import os
import re
import urllib.error
import urllib.request
from collections import OrderedDict
from typing import BinaryIO, Dict, Iterable, List, NamedTuple, Optional, Sequence, Union

import torch
from tabulate import tabulate
from torch import nn

from fastreid.utils.checkpoint import read_checkpoint
from fastreid.utils.checkpoint_layouts import to_fastreid_layout
from fastreid.utils.file_io import PathManager, atomic_write

__all__ = [
    "KNOWN_WEIGHTS",
    "OFFLINE_ENV",
    "IncompatibleWeights",
    "KnownWeights",
    "PretrainedWeightsNotFound",
    "WeightsChecksumError",
    "download_weights",
    "downloads_allowed",
    "extract_state_dict",
    "find_in_hub_cache",
    "hub_checkpoint_dir",
    "init_pretrained",
    "load_pretrained_weights",
    "resolve_pretrained_path",
]

logger = logging.getLogger(__name__)

OFFLINE_ENV = "FASTREID_OFFLINE"
"""Environment variable: "1" (or true/yes/on) forbids every download."""


class KnownWeights(NamedTuple):
    """Where a published weight file comes from.

    Attributes:
        url: the download address.
        sha256: the file's SHA-256 in hex: the whole digest, or its leading digits (at least 8) as torch hub
            puts them in file names (``resnet50-0676ba61.pth``), checked the same way torch hub does.
    """

    url: str
    sha256: str


# torch hub's naming of published files: ``<arch>-<leading hex digits of the file's SHA-256>.pth``.
_HASHED_NAME = re.compile(r"^(?P<arch>.+)-(?P<digest>[0-9a-f]{8,})\.pth$")


def _release(url_folder: str, names: Iterable[str]) -> Dict[str, KnownWeights]:
    """Entries for hash-named files published in one folder."""
    return {name: KnownWeights(f"{url_folder}/{name}", _HASHED_NAME.match(name).group("digest")) for name in names}


KNOWN_WEIGHTS: Dict[str, KnownWeights] = {
    # torchvision's ImageNet weights (the names' hex digits are the files' SHA-256 prefixes).
    **_release("https://download.pytorch.org/models", (
        "resnet18-f37072fd.pth", "resnet34-b627a593.pth", "resnet50-0676ba61.pth", "resnet101-63fe2227.pth",
        "resnet152-394f9c45.pth", "resnext50_32x4d-7cdf4587.pth",
    )),
    # ResNeSt's release (its code lists these digits as the files' SHA-256 prefixes).
    **_release("https://github.com/zhanghang1989/ResNeSt/releases/download/weights_step1", (
        "resnest50-528c19ca.pth", "resnest101-22405ba7.pth", "resnest200-75117900.pth",
    )),
    # IBN-Net's, RepVGG's and torchreid's (OSNet) releases publish no checksum: those files are never downloaded;
    # place them in the hub cache or give MODEL.BACKBONE.PRETRAIN_PATH.
}
"""The published files fastreid may download, by hub-cache file name. Backbones name files; this is the one
table that says where they come from."""


class IncompatibleWeights(NamedTuple):
    """Keys of a partial load: absent from the file, not in the model, or of another shape."""

    missing: List[str]
    unexpected: List[str]
    shape_mismatch: List[str]


class PretrainedWeightsNotFound(FileNotFoundError):
    """No local file and no download: the message names the file to place, where, and its URL if known."""


class WeightsChecksumError(RuntimeError):
    """A downloaded file's SHA-256 differs from the known one (nothing is left in the cache)."""


def hub_checkpoint_dir() -> str:
    """The torch hub cache folder for weight files (``$TORCH_HOME/hub/checkpoints``, by default
    ``~/.cache/torch/hub/checkpoints``)."""
    return os.path.join(torch.hub.get_dir(), "checkpoints")


def downloads_allowed() -> bool:
    """False when ``$FASTREID_OFFLINE`` is set to 1/true/yes/on."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("1", "true", "yes", "on")


def find_in_hub_cache(file_names: Sequence[str]) -> str:
    """Find a pretrained file in the torch hub cache without downloading.

    Args:
        file_names: accepted file names, preferred first. A name ``<arch>-<hex digest>.pth`` also accepts any
            other digest of the same ``<arch>`` (weights re-released under a new hash).

    Returns:
        str: path of the first file found.

    Raises:
        PretrainedWeightsNotFound: naming the file to provide, the folder searched and the ways out.
    """
    path = _cached(file_names)
    if path is None:
        raise PretrainedWeightsNotFound(_not_found_message(file_names[0], "this lookup does not download"))
    return path


def _cached(file_names: Sequence[str]) -> Optional[str]:
    cache_dir = hub_checkpoint_dir()
    for name in file_names:
        path = os.path.join(cache_dir, name)
        if os.path.isfile(path):
            return path
    for name in file_names:
        match = _HASHED_NAME.match(name)
        if not match:
            continue
        arch = match.group("arch")
        found = sorted(
            p for p in glob.glob(os.path.join(cache_dir, glob.escape(arch) + "-*.pth"))
            if (m := _HASHED_NAME.match(os.path.basename(p))) and m.group("arch") == arch
        )
        if found:
            return found[0]
    return None


def _not_found_message(name: str, reason: str) -> str:
    known = KNOWN_WEIGHTS.get(name)
    source = f"Download {known.url} and place it" if known else "Place it"
    return (
        f"Pretrained weights '{name}' are not in the torch hub cache {hub_checkpoint_dir()} and {reason}. "
        f"{source} at {os.path.join(hub_checkpoint_dir(), name)} (the cache is $TORCH_HOME/hub/checkpoints, "
        f"by default ~/.cache/torch/hub/checkpoints), or give its path with MODEL.BACKBONE.PRETRAIN_PATH, or "
        f"train from scratch with MODEL.BACKBONE.PRETRAIN False."
    )


def download_weights(name: str, known: KnownWeights, cache_dir: Optional[str] = None,
                     timeout: float = 30.0) -> str:
    """Download ``known.url`` into ``cache_dir/name``, verifying its SHA-256 before the file appears.

    The file is written to a temporary beside the target and renamed only when complete and verified, so an
    interrupted or corrupt download never leaves a file that would later be taken for the weights.

    Args:
        name: the file name in the cache.
        known: URL and SHA-256 (or prefix) of the file.
        cache_dir: destination folder (default: :func:`hub_checkpoint_dir`).
        timeout: seconds to wait for the server on connecting and on each read.

    Returns:
        The path of the verified file.

    Raises:
        WeightsChecksumError: naming the expected and actual digests; the temporary file is removed.
        urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException: the server could not
            be reached or broke off (also HTTP errors such as 404).
    """
    cache_dir = cache_dir or hub_checkpoint_dir()
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, name)
    expected = known.sha256.lower()

    def fetch(f: BinaryIO) -> None:
        digest = hashlib.sha256()
        with urllib.request.urlopen(known.url, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                f.write(chunk)
        actual = digest.hexdigest()
        if not actual.startswith(expected):
            raise WeightsChecksumError(
                f"Downloaded {known.url} has SHA-256 {actual}, expected {expected}"
                f"{'…' if len(expected) < 64 else ''}; the file was discarded. The download is corrupt or the "
                f"file was replaced upstream: retry, or place a trusted copy at {path}."
            )

    logger.info("Downloading %s to %s", known.url, path)
    atomic_write(path, fetch)
    logger.info("Downloaded and verified %s (%.1f MB)", path, os.path.getsize(path) / 2 ** 20)
    return path


def resolve_pretrained_path(pretrain_path: str, file_names: Sequence[str]) -> str:
    """The file to load: ``pretrain_path`` when given (it must exist), else one in the hub cache, else the first
    of ``file_names`` listed in :data:`KNOWN_WEIGHTS`, downloaded and verified (unless ``$FASTREID_OFFLINE``).

    Raises:
        FileNotFoundError: for a ``pretrain_path`` that does not exist.
        PretrainedWeightsNotFound: (a FileNotFoundError) no file and no download, naming the file to place,
            the folder, and the URL when known.
        WeightsChecksumError: a download whose SHA-256 is wrong.
    """
    if pretrain_path:
        if not PathManager.exists(pretrain_path):
            raise FileNotFoundError(
                f"MODEL.BACKBONE.PRETRAIN_PATH '{pretrain_path}' does not exist. Fix the path, or train from "
                f"scratch with MODEL.BACKBONE.PRETRAIN False."
            )
        return pretrain_path
    path = _cached(file_names)
    if path is not None:
        return path
    name = next((n for n in file_names if n in KNOWN_WEIGHTS), None)
    if name is None:
        raise PretrainedWeightsNotFound(_not_found_message(
            file_names[0], "no download address with a checksum is known for it"))
    if not downloads_allowed():
        raise PretrainedWeightsNotFound(_not_found_message(name, f"downloading is off (${OFFLINE_ENV} is set)"))
    known = KNOWN_WEIGHTS[name]
    try:
        return download_weights(name, known)
    except (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException) as e:
        reason = f"HTTP {e.code} {e.reason}" if isinstance(e, urllib.error.HTTPError) else getattr(e, "reason", e)
        raise PretrainedWeightsNotFound(_not_found_message(
            name, f"downloading it failed (offline? {reason})")) from e


def init_pretrained(
    module: nn.Module,
    pretrain: bool,
    pretrain_path: str,
    file_names: Sequence[str],
    ignore_unexpected: Iterable[str] = ("fc.weight", "fc.bias"),
) -> Optional[IncompatibleWeights]:
    """The backbones' common pretraining step (MODEL.BACKBONE.PRETRAIN / PRETRAIN_PATH).

    Args:
        module: the freshly built backbone.
        pretrain: load weights at all; False trains from scratch.
        pretrain_path: a local weight file; "" resolves ``file_names`` (hub cache, then a verified download).
        file_names: the hub-cache file names of the backbone's ImageNet weights, preferred first.
        ignore_unexpected: keys of the file that a reid backbone does not have, left out of the report (the
            ImageNet classifier).

    Returns:
        The keys that did not load, or None when ``pretrain`` is False.
    """
    if not pretrain:
        return None
    path = resolve_pretrained_path(pretrain_path, file_names)
    return load_pretrained_weights(module, path, ignore_unexpected=ignore_unexpected)


def extract_state_dict(checkpoint: Union[Dict, nn.Module]) -> Dict[str, torch.Tensor]:
    """The tensors of a loaded weights file: a bare state_dict, a module, or a training checkpoint
    (``{"model": ...}`` / ``{"state_dict": ...}`` / pycls's ``{"model_state": ...}``)."""
    if isinstance(checkpoint, nn.Module):
        return checkpoint.state_dict()
    for key in ("model", "state_dict", "model_state"):
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

    Other frameworks' files load by name too: a file in a layout of ``CHECKPOINT_LAYOUT_REGISTRY`` (fast-reid's
    and torchreid's own networks, pycls's RegNet / EfficientNet, the file of a network that fastreid nests:
    ``features.0.0.weight`` of a torchvision model, which a backbone holds as ``body.features.0.0.weight``) is
    renamed to ``module``'s keys first (:func:`fastreid.utils.checkpoint_layouts.to_fastreid_layout`).

    Args:
        module: the model to fill.
        checkpoint: a file path (state_dict or a checkpoint holding one under "model"/"state_dict"/
            "model_state"; a "module." prefix from DataParallel is stripped) or a state_dict.
        ignore_unexpected: keys expected in the file but not in the model (e.g. an ImageNet classifier),
            left out of the report.

    Returns:
        IncompatibleWeights: the keys left untouched.
    """
    source = checkpoint if isinstance(checkpoint, str) else "a state_dict"
    if isinstance(checkpoint, str):
        checkpoint = read_checkpoint(PathManager.get_local_path(checkpoint))
    own = module.state_dict()
    if isinstance(checkpoint, dict):
        checkpoint, layout = to_fastreid_layout(checkpoint, set(own))
        if layout is not None:
            logger.info("%s is in the %s layout; its keys were renamed to fastreid's", source, layout)
    state = extract_state_dict(checkpoint)
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
