"""Checkpointing: atomic saves, safe loads and readable reports of what did not match.

:class:`Checkpointer` extends fvcore's: a save writes a temporary file in the same folder, fsyncs it and
renames it over the target (also for ``last_checkpoint``), so a crash mid-save leaves the previous
checkpoint intact; files are loaded with ``torch.load(..., weights_only=True)`` by default, so a checkpoint
cannot run code; the random number generators (python, numpy, torch) are saved and restored on resume; run
metadata (e.g. the filled config and the class count) can be stamped into every file.

A load reports each key that did not load once, in a WARNING table per kind: skipped for its shape, in the
model but not the checkpoint, in the checkpoint but not the model. :func:`load_inference_weights` loads a
trained model for inference and leaves the training-only identity classifier out of the report.
"""
import fnmatch
import hashlib
import logging
import os
import pickle
import random
from collections import OrderedDict, defaultdict
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple

import numpy as np
import torch
from fvcore.common import checkpoint as fvcore_checkpoint
from tabulate import tabulate
from torch import nn

from . import comm
from .file_io import PathManager, atomic_write

__all__ = ["Checkpointer", "INFERENCE_SKIP_PREFIXES", "IncompatibleKeys", "RNGState", "load_inference_weights"]

logger = logging.getLogger(__name__)

INFERENCE_SKIP_PREFIXES: Tuple[str, ...] = ("heads.classifier", "heads.*.classifier")
"""Module paths of the identity classifiers of fastreid's meta-archs (``Baseline``: ``heads.classifier``,
``MGN``: ``heads.<branch>.classifier``); their width is the training set's class count."""

class RNGState:
    """Checkpointable state of the python, numpy and torch (CPU and CUDA) random generators.

    The state holds only tensors, ints and lists, so it loads with ``weights_only=True``. Rank 0's state is
    restored exactly; other ranks are reseeded from it and their rank so that they stay distinct.
    """

    def state_dict(self) -> Dict[str, Any]:
        version, py_state, gauss = random.getstate()
        np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
        state = {
            "python": [version, list(py_state), gauss],
            "numpy": [np_name, torch.from_numpy(np_keys.astype(np.int64)), int(np_pos), int(np_has_gauss), float(np_gauss)],
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        rank = comm.get_rank()
        if rank != 0:
            digest = hashlib.sha256(state["torch"].numpy().tobytes() + str(rank).encode()).digest()
            seed = int.from_bytes(digest[:4], "little")
            random.seed(seed)
            np.random.seed(seed)
            torch.manual_seed(seed)
            return
        version, py_state, gauss = state["python"]
        random.setstate((version, tuple(py_state), gauss))
        np_name, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
        np.random.set_state((np_name, np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])


class IncompatibleKeys(NamedTuple):
    """What a load left untouched, each key in exactly one field.

    Attributes:
        missing_keys: model keys the checkpoint lacks (sorted); aliases of a loaded tensor are left out.
        unexpected_keys: checkpoint keys the model lacks (sorted).
        incorrect_shapes: ``(key, shape in checkpoint, shape in model)`` of the tensors skipped for their shape.
    """

    missing_keys: List[str]
    unexpected_keys: List[str]
    incorrect_shapes: List[Tuple[str, Tuple[int, ...], Tuple[int, ...]]]


def _is_local(path: str) -> bool:
    return "://" not in path


def _table(rows: List[Tuple[str, ...]], headers: Tuple[str, ...]) -> str:
    return tabulate(rows, headers=headers, tablefmt="pipe")


_STORABLE_LEAVES = (str, bytes, int, float, bool, type(None))


def _check_storable(value: Any, where: str) -> None:
    """Raises TypeError unless ``value`` loads back with ``torch.load(weights_only=True)``."""
    if type(value) in (list, tuple):
        for i, item in enumerate(value):
            _check_storable(item, f"{where}[{i}]")
    elif type(value) in (dict, OrderedDict):
        for key, item in value.items():
            _check_storable(key, f"a key of {where}")
            _check_storable(item, f"{where}[{key!r}]")
    elif not (type(value) in _STORABLE_LEAVES or isinstance(value, torch.Tensor)):
        raise TypeError(
            f"Checkpoint metadata {where} is a {type(value).__name__}; only str, numbers, bools, None, tensors "
            "and lists, tuples or dicts of them load with weights_only=True (store a config as cfg.dump())."
        )


def _under(key: str, prefixes: Sequence[str]) -> bool:
    """Whether ``key`` lies in a module whose path matches one of ``prefixes`` (fnmatch wildcards)."""
    parts = key.split(".")
    paths = [".".join(parts[:end]) for end in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatchcase(path, prefix) for path in paths for prefix in prefixes)


def _drop_unfit(model: nn.Module, state: Dict[str, Any], prefixes: Sequence[str]) -> List[str]:
    """Removes from ``state`` the tensors under ``prefixes`` the model cannot take; returns their keys.

    A tensor fits when the model holds one of the same name and shape; those stay and are loaded.
    """
    own = model.state_dict()
    # As fvcore does after this, read keys without the "module." of a DataParallel-wrapped save.
    wrapped = bool(state) and all(key.startswith("module.") for key in state)
    dropped = []
    for key in list(state):
        name = key[len("module."):] if wrapped else key
        if not _under(name, prefixes):
            continue
        target = own.get(name)
        lazy = isinstance(target, nn.parameter.UninitializedParameter)
        if target is None or (not lazy and tuple(target.shape) != tuple(state[key].shape)):
            del state[key]
            dropped.append(name)
    return dropped


def _loaded_under_alias(model: nn.Module, missing: Iterable[str]) -> Set[str]:
    """The ``missing`` keys whose tensor was loaded under another name (a module or tensor shared by two paths)."""
    missing = set(missing)
    names_by_tensor: Dict[int, Set[str]] = defaultdict(set)
    # Unlike named_parameters(), state_dict() lists a shared tensor under every path that reaches it.
    for name, tensor in model.state_dict(keep_vars=True).items():
        names_by_tensor[id(tensor)].add(name)
    covered: Set[str] = set()
    for names in names_by_tensor.values():
        if not names <= missing:
            covered |= names & missing
    return covered


def _each_key_once(model: nn.Module, raw: Any) -> IncompatibleKeys:
    """fvcore's report (``missing_keys``, ``unexpected_keys``, ``incorrect_shapes``) with each key once.

    fvcore removes shape-mismatched tensors from the checkpoint before ``load_state_dict``, which then
    lists them as missing too; here they stay only shape mismatches.
    """
    shapes = [(key, tuple(in_file), tuple(in_model)) for key, in_file, in_model in raw.incorrect_shapes]
    skipped = {key for key, _, _ in shapes} | _loaded_under_alias(model, raw.missing_keys)
    missing = sorted(key for key in set(raw.missing_keys) if key not in skipped)
    return IncompatibleKeys(missing, sorted(raw.unexpected_keys), shapes)


class Checkpointer(fvcore_checkpoint.Checkpointer):
    """fvcore ``Checkpointer`` with atomic saves, ``weights_only`` loads, RNG state, metadata and readable reports.

    Example::

        checkpointer = Checkpointer(model, cfg.OUTPUT_DIR, optimizer=optimizer, scheduler=scheduler,
                                    trainer=trainer,
                                    metadata={"config": cfg.dump(), "num_classes": cfg.MODEL.HEADS.NUM_CLASSES})
        extra = checkpointer.resume_or_load(cfg.MODEL.WEIGHTS, resume=True)
        start_iter = extra.get("iteration", -1) + 1   # when resuming; see ``resume_or_load``

    Files hold ``{"model": state_dict, <checkpointable>: state, "rng": ..., **metadata, **extra}``; a file
    that is a bare model state dict (e.g. converted pretrained weights) is also accepted.

    Attributes:
        metadata: entries written into every saved file (may be updated between saves); a load returns them
            with the other unprocessed entries.
    """

    def __init__(
        self,
        model: nn.Module,
        save_dir: str = "",
        *,
        save_to_disk: Optional[bool] = None,
        weights_only: bool = True,
        save_rng: bool = True,
        metadata: Optional[Mapping[str, Any]] = None,
        **checkpointables: Any,
    ) -> None:
        """
        Args:
            model: the model; a (Distributed)DataParallel wrapper is unwrapped.
            save_dir: folder of the checkpoints and of the ``last_checkpoint`` file.
            save_to_disk: whether :meth:`save` writes; default only on the main process.
            weights_only: load with ``torch.load(weights_only=True)``; set False only for trusted files
                holding other Python objects.
            save_rng: save the random generators' state (restored when checkpointables are loaded).
            metadata: entries merged into every saved file, e.g. ``{"config": cfg.dump(), "num_classes":
                cfg.MODEL.HEADS.NUM_CLASSES}``; plain values only (str, numbers, bools, None, tensors and
                lists/dicts of them), so that files keep loading with ``weights_only=True``.
            checkpointables: objects with ``state_dict()`` / ``load_state_dict()`` (optimizer, scheduler,
                trainer, ...), saved under their keyword.

        Raises:
            TypeError: if a metadata value would not load with ``weights_only=True``.
        """
        if save_to_disk is None:
            save_to_disk = comm.is_main_process()
        super().__init__(model, save_dir, save_to_disk=save_to_disk, **checkpointables)
        self.path_manager = PathManager
        self.logger = logger  # fvcore's default is its own module logger, outside fastreid's handlers
        self.weights_only = weights_only
        self.metadata: Dict[str, Any] = dict(metadata or {})
        _check_storable(self.metadata, "metadata")
        if save_rng:
            self.add_checkpointable("rng", RNGState())

    def save(self, name: str, *, tag_last: bool = True, **kwargs: Any) -> None:
        """Writes ``<save_dir>/<name>.pth`` atomically, with :attr:`metadata` and ``kwargs``.

        Args:
            name: file name without extension.
            tag_last: record it in ``last_checkpoint`` (the file :meth:`resume_or_load` resumes from);
                False for side copies such as the best model.
            kwargs: extra data to store (e.g. ``iteration``, ``epoch``); plain numbers, strings, tensors.
                A key also in :attr:`metadata` takes this value.

        Raises:
            ValueError: if a metadata key is "model" or the name of a checkpointable.
            TypeError: if a metadata value would not load with ``weights_only=True``.
        """
        if not self.save_dir or not self.save_to_disk:
            return
        clash = sorted(set(self.metadata) & (set(self.checkpointables) | {"model"}))
        if clash:
            raise ValueError(f"Checkpoint metadata keys {clash} would overwrite the model or a checkpointable")
        _check_storable(self.metadata, "metadata")
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(self.metadata)
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        self.logger.info("Saving checkpoint to %s", save_file)
        if _is_local(save_file):
            os.makedirs(self.save_dir, exist_ok=True)
            atomic_write(save_file, lambda f: torch.save(data, f))
        else:
            with self.path_manager.open(save_file, "wb") as f:
                torch.save(data, f)
        if tag_last:
            self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        save_file = os.path.join(self.save_dir, "last_checkpoint")
        if _is_local(save_file):
            atomic_write(save_file, lambda f: f.write(last_filename_basename.encode()))
        else:
            super().tag_last_checkpoint(last_filename_basename)

    def load(
        self, path: str, checkpointables: Optional[List[str]] = None, *, skip_prefixes: Sequence[str] = ()
    ) -> Dict[str, Any]:
        """Loads the model weights and the named checkpointables from ``path``.

        Keys that do not load are logged once each, as WARNING tables (see :meth:`load_model_weights`).

        Args:
            path: checkpoint file, local or a URL the PathManager handles; empty loads nothing.
            checkpointables: names of the checkpointables to restore; None restores all in the file, ``[]``
                only the model.
            skip_prefixes: module paths of training-only parts (fnmatch wildcards allowed, e.g.
                :data:`INFERENCE_SKIP_PREFIXES`). Their tensors are loaded when the model has them with the
                same shape; the rest are dropped, and nothing under these paths is reported (one DEBUG line).

        Returns:
            The file's entries not processed (metadata such as ``config``, ``num_classes``, ``iteration``,
            and checkpointables not restored).

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            ValueError: if the file is not a torch checkpoint, or cannot be loaded with ``weights_only``.
        """
        if not path:
            self.logger.info("No checkpoint given: the model keeps its initial weights")
            return {}
        if _is_local(path) and not os.path.isfile(path):
            raise FileNotFoundError(
                f"Checkpoint '{path}' does not exist. Check MODEL.WEIGHTS (or the path given to "
                "resume_or_load), or pass an empty path to start from scratch."
            )
        self.logger.info("Loading checkpoint from %s", path)
        checkpoint = self._load_file(path if _is_local(path) else self.path_manager.get_local_path(path))
        self._log_incompatible_keys(self.load_model_weights(checkpoint, skip_prefixes=skip_prefixes))
        for key in self.checkpointables if checkpointables is None else checkpointables:
            if key in checkpoint:
                self.logger.info("Loading %s from %s", key, path)
                self.checkpointables[key].load_state_dict(checkpoint.pop(key))
        return checkpoint

    def load_model_weights(self, checkpoint: Dict[str, Any], *, skip_prefixes: Sequence[str] = ()) -> IncompatibleKeys:
        """Loads ``checkpoint["model"]`` (popped) into the model, skipping tensors of another shape.

        Args:
            checkpoint: a loaded checkpoint dict holding the state dict under "model".
            skip_prefixes: as in :meth:`load`.

        Returns:
            What did not load, each key once: a tensor skipped for its shape only as a shape mismatch, a key
            reachable under two paths (shared module) not as missing when loaded under the other, nothing
            under ``skip_prefixes``.
        """
        dropped = _drop_unfit(self.model, checkpoint["model"], skip_prefixes) if skip_prefixes else []
        report = _each_key_once(self.model, self._load_model(checkpoint))
        if not skip_prefixes:
            return report
        untouched = [key for key in report.missing_keys if _under(key, skip_prefixes)]
        if dropped or untouched:
            left_out = sorted(set(dropped) | set(untouched))
            self.logger.debug(
                "Training-only tensors under %s not loaded (the model keeps its own): %s",
                list(skip_prefixes), left_out,
            )
        return report._replace(missing_keys=[key for key in report.missing_keys if key not in untouched])

    def _load_file(self, f: str) -> Dict[str, Any]:
        try:
            checkpoint = torch.load(f, map_location=torch.device("cpu"), weights_only=self.weights_only)
        except pickle.UnpicklingError as e:
            if self.weights_only:
                raise ValueError(
                    f"'{f}' could not be loaded with torch.load(weights_only=True): it is either not a torch "
                    "checkpoint or it holds Python objects besides tensors. If you trust the file, load it "
                    f"with Checkpointer(..., weights_only=False). Cause: {e}"
                ) from e
            raise ValueError(f"'{f}' is not a torch checkpoint: {e}") from e
        except Exception as e:  # noqa: BLE001 - torch raises many types on foreign bytes
            raise ValueError(f"'{f}' is not a readable torch checkpoint (truncated or another format): {e}") from e
        if not isinstance(checkpoint, dict):
            raise ValueError(
                f"'{f}' holds a {type(checkpoint).__name__}, not a dict; fastreid checkpoints are dicts "
                "with a 'model' state dict (save weights with model.state_dict(), not the module)."
            )
        if "model" not in checkpoint:
            # A bare state dict, e.g. converted pretrained weights.
            checkpoint = {"model": checkpoint}
        return checkpoint

    def _log_incompatible_keys(self, incompatible: IncompatibleKeys) -> None:
        if incompatible.incorrect_shapes:
            rows = [(k, tuple(s_ckpt), tuple(s_model)) for k, s_ckpt, s_model in incompatible.incorrect_shapes]
            self.logger.warning(
                "Skipped loading %d parameter(s) whose shapes differ (expected when e.g. the number of "
                "identities changed):\n%s",
                len(rows),
                _table(rows, ("key", "shape in checkpoint", "shape in model")),
            )
        if incompatible.missing_keys:
            self.logger.warning(
                "%d model key(s) not found in the checkpoint (left as initialised):\n%s",
                len(incompatible.missing_keys),
                _table([(k,) for k in incompatible.missing_keys], ("missing key",)),
            )
        if incompatible.unexpected_keys:
            self.logger.warning(
                "%d checkpoint key(s) not used by the model:\n%s",
                len(incompatible.unexpected_keys),
                _table([(k,) for k in incompatible.unexpected_keys], ("unexpected key",)),
            )


def load_inference_weights(
    model: nn.Module, path: str, *, skip_prefixes: Sequence[str] = INFERENCE_SKIP_PREFIXES
) -> Dict[str, Any]:
    """Loads a trained checkpoint into ``model`` for inference, leaving the training-only classifier aside.

    The classifier is as wide as the training set's class count, which an inference config often does not
    know (MODEL.HEADS.NUM_CLASSES 0 builds a 0×D classifier; ``EmbeddingHead`` does not use it in eval mode).
    Classifier tensors that fit the model are loaded, so a ``ClasHead`` (whose eval output is the logits)
    built with the trained class count stays exact; the others are dropped with one DEBUG line. Anything
    else that does not load, such as another architecture's tensors, is still reported as a WARNING table.

    Args:
        model: the model to fill; a (Distributed)DataParallel wrapper is unwrapped.
        path: checkpoint file (local, or a URL the PathManager handles).
        skip_prefixes: module paths of the training-only parts, fnmatch wildcards allowed.

    Returns:
        The file's other entries, e.g. the ``config`` and ``num_classes`` metadata of a run.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file is not a torch checkpoint, or cannot be loaded with ``weights_only``.
    """
    checkpointer = Checkpointer(model, save_to_disk=False, save_rng=False)
    return checkpointer.load(path, checkpointables=[], skip_prefixes=skip_prefixes)
