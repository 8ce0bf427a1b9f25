"""Checkpointing: atomic saves of finite state only, safe loads and readable reports of what did not match.

:class:`Checkpointer` extends fvcore's: a save writes a temporary file in the same folder, fsyncs it and
renames it over the target (also for ``last_checkpoint``), so a crash mid-save leaves the previous
checkpoint intact, and a full disk says so with the space needed and free; a save whose model or optimizer
state holds NaN or Inf writes nothing, so ``last_checkpoint`` always names finite state. Files are loaded
with ``torch.load(..., weights_only=True)`` by default, so a checkpoint cannot run code; a file that is not a
checkpoint is described, not unpickled. The random number generators (python, numpy, torch) are saved and
restored on resume; run metadata (e.g. the filled config and the class count) can be stamped into every file.

A load that leaves part of the model outside the identity classifier at its initialisation (another
architecture's weights) fails with a table of what matched, unless ``partial=True``; a classifier of
another width (fine-tuning on other identities) is one INFO line. Other keys that did not load are
reported once each, in a WARNING table per kind. :func:`load_inference_weights` loads a trained model for
inference and leaves the training-only identity classifier out of the report.
"""
import hashlib
import logging
import os
import pickle
import random
import re
import warnings
from collections import OrderedDict, defaultdict
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from fvcore.common import checkpoint as fvcore_checkpoint
from tabulate import tabulate
from torch import nn

from . import comm
from .checkpoint_layouts import to_fastreid_layout
from .file_io import PYTORCH_ARCHIVE, PathManager, atomic_write, describe_file_start, remove_stale_temporaries
from .weights_fit import (CLASSIFIER_PREFIXES, IncompatibleKeys, drop_unfit, fit_table, in_modules,
                          incompatible_keys_once, judge_fit, unfit_examples, weight_keys)

__all__ = [
    "CLASSIFIER_PREFIXES",
    "Checkpointer",
    "INFERENCE_SKIP_PREFIXES",
    "IncompatibleKeys",
    "RNGState",
    "load_inference_weights",
    "read_checkpoint",
]

logger = logging.getLogger(__name__)

INFERENCE_SKIP_PREFIXES: Tuple[str, ...] = ("heads.classifier", "heads.*.classifier")
"""Module paths of the identity classifiers of fastreid's meta-archs (``Baseline``: ``heads.classifier``,
``MGN``: ``heads.<branch>.classifier``); their width is the training set's class count."""

_MB = 2 ** 20


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


def _named_tensors(value: Any, where: str) -> Iterator[Tuple[str, torch.Tensor]]:
    """Every tensor inside nested dicts, lists and tuples, named by its path (``optimizer/state/0/exp_avg``)."""
    if isinstance(value, torch.Tensor):
        yield where, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _named_tensors(item, f"{where}/{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _named_tensors(item, f"{where}/{i}")


def _non_finite(state: Mapping[str, Any]) -> List[str]:
    """Paths of the floating-point tensors in ``state`` holding NaN or Inf.

    One ``isfinite().all()`` per tensor, stacked per device so that a GPU model costs one synchronisation.
    """
    named = [
        (name, t) for name, t in _named_tensors(state, "")
        if (t.is_floating_point() or t.is_complex()) and t.numel() and t.layout == torch.strided
        and not isinstance(t, nn.parameter.UninitializedTensorMixin)
    ]
    by_device: Dict[torch.device, List[int]] = defaultdict(list)
    for i, (_, t) in enumerate(named):
        by_device[t.device].append(i)
    finite = [True] * len(named)
    for indices in by_device.values():
        flags = torch.stack([torch.isfinite(named[i][1]).all() for i in indices]).tolist()
        for i, flag in zip(indices, flags):
            finite[i] = flag
    return [name.lstrip("/") for (name, _), ok in zip(named, finite) if not ok]


def _byte_size(state: Mapping[str, Any]) -> int:
    return sum(t.numel() * t.element_size() for _, t in _named_tensors(state, ""))


_UNSAFE_ADVICE = ("weights_only` set to `False", "weights_only=False", "file an issue")


class Checkpointer(fvcore_checkpoint.Checkpointer):
    """fvcore ``Checkpointer`` with atomic saves of finite state, ``weights_only`` loads, RNG state, metadata,
    loads that refuse another architecture's weights, and readable reports.

    Example::

        checkpointer = Checkpointer(model, cfg.OUTPUT_DIR, optimizer=optimizer, scheduler=scheduler,
                                    trainer=trainer, partial=cfg.MODEL.WEIGHTS_PARTIAL,
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
        partial: bool = False,
        metadata: Optional[Mapping[str, Any]] = None,
        **checkpointables: Any,
    ) -> None:
        """
        Args:
            model: the model; a (Distributed)DataParallel wrapper is unwrapped.
            save_dir: folder of the checkpoints and of the ``last_checkpoint`` file. When this checkpointer
                saves to it, temporaries that killed saves of this host left there are removed (one INFO
                line).
            save_to_disk: whether :meth:`save` writes; default only on the main process.
            weights_only: load with ``torch.load(weights_only=True)``; set False only for trusted files
                holding other Python objects.
            save_rng: save the random generators' state (restored when checkpointables are loaded).
            partial: accept loads that leave parts of the model other than the identity classifier at their
                initialisation (missing or of another shape, or a file with extra tensors for the model's
                modules), reporting them as WARNING tables; False (default) makes them an error
                (MODEL.WEIGHTS_PARTIAL).
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
        self.partial = partial
        self.metadata: Dict[str, Any] = dict(metadata or {})
        _check_storable(self.metadata, "metadata")
        if save_rng:
            self.add_checkpointable("rng", RNGState())
        if save_to_disk and save_dir and _is_local(save_dir):
            count, freed = remove_stale_temporaries(save_dir)
            if count:
                self.logger.info("Removed %d temporary file(s) (%.1f MB) left in %s by interrupted saves",
                                 count, freed / _MB, save_dir)

    def save(self, name: str, *, tag_last: bool = True, **kwargs: Any) -> None:
        """Writes ``<save_dir>/<name>.pth`` atomically, with :attr:`metadata` and ``kwargs``.

        The model and checkpointable state is checked for NaN and Inf first, on every process (so that all
        ranks of a job stop together, although only the main one writes).

        Args:
            name: file name without extension.
            tag_last: record it in ``last_checkpoint`` (the file :meth:`resume_or_load` resumes from);
                False for side copies such as the best model.
            kwargs: extra data to store (e.g. ``iteration``, ``epoch``); plain numbers, strings, tensors.
                A key also in :attr:`metadata` takes this value.

        Raises:
            FloatingPointError: if a floating-point tensor of the model or of a checkpointable (e.g. the
                optimizer's momentum) holds NaN or Inf; nothing is written and ``last_checkpoint`` still
                names the last finite checkpoint, which the message gives.
            OSError: "No space left on device writing PATH (N MB needed, M MB free)" when the disk is full
                (nothing is changed), or another write error.
            ValueError: if a metadata key is "model" or the name of a checkpointable.
            TypeError: if a metadata value would not load with ``weights_only=True``.
        """
        if not self.save_dir:
            return
        clash = sorted(set(self.metadata) & (set(self.checkpointables) | {"model"}))
        if clash:
            raise ValueError(f"Checkpoint metadata keys {clash} would overwrite the model or a checkpointable")
        _check_storable(self.metadata, "metadata")
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        bad = _non_finite(data)
        if bad:
            raise FloatingPointError(self._non_finite_message(save_file, bad))
        if not self.save_to_disk:
            return
        size = _byte_size(data)
        data.update(self.metadata)
        data.update(kwargs)
        self.logger.info("Saving checkpoint to %s", save_file)
        if _is_local(save_file):
            os.makedirs(self.save_dir, exist_ok=True)
            atomic_write(save_file, lambda f: torch.save(data, f), size_hint=size)
        else:
            with self.path_manager.open(save_file, "wb") as f:
                torch.save(data, f)
        if tag_last:
            self.tag_last_checkpoint(basename)

    def _non_finite_message(self, save_file: str, bad: List[str]) -> str:
        last = self.get_checkpoint_file() if self.has_checkpoint() else ""
        if last:
            previous = (f"The last finite checkpoint is {last}, which {os.path.join(self.save_dir, 'last_checkpoint')} "
                        "still names: after the fix, continue from it with --resume, or start again.")
        else:
            previous = "The last finite checkpoint: none yet (start again after the fix)."
        return (
            f"Not saving {save_file}: {len(bad)} tensor(s) hold NaN or Inf, first {', '.join(bad[:5])}. The "
            "training diverged (an optimizer step made the weights or the optimizer state non-finite). "
            f"{previous} Lower SOLVER.BASE_LR, clip gradients (SOLVER.CLIP_GRADIENTS.ENABLED True) or warm up "
            "longer (SOLVER.WARMUP_ITERS)."
        )

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        save_file = os.path.join(self.save_dir, "last_checkpoint")
        if _is_local(save_file):
            text = last_filename_basename.encode()
            atomic_write(save_file, lambda f: f.write(text), size_hint=len(text))
        else:
            super().tag_last_checkpoint(last_filename_basename)

    def resume_or_load(self, path: str, *, resume: bool = True) -> Dict[str, Any]:
        """With ``resume`` and a ``last_checkpoint`` in ``save_dir``, restores everything from the file it
        names; otherwise loads only the model weights from ``path`` (see :meth:`load`).

        Returns:
            As :meth:`load`.

        Raises:
            FileNotFoundError / ValueError: as :meth:`load`; when resuming, the message names the file
                ``last_checkpoint`` points to and how to continue (the newest intact checkpoint of the folder,
                to be written into ``last_checkpoint``, or a start without --resume).
        """
        if not (resume and self.has_checkpoint()):
            return self.load(path, checkpointables=[])
        last_file = os.path.join(self.save_dir, "last_checkpoint")
        target = self.get_checkpoint_file()
        if not os.path.basename(target):
            raise FileNotFoundError(f"{last_file} is empty: it should name the checkpoint to resume from. "
                                    f"{self._resume_advice(target)}")
        if _is_local(target) and not os.path.isfile(target):
            raise FileNotFoundError(f"{target}, which {last_file} names, does not exist (moved or deleted?). "
                                    f"{self._resume_advice(target)}")
        try:
            return self.load(target)
        except (FileNotFoundError, ValueError) as e:
            kind = FileNotFoundError if isinstance(e, FileNotFoundError) else ValueError
            raise kind(f"Cannot resume from {target}, which {last_file} names: {e} "
                       f"{self._resume_advice(target)}") from e

    def _resume_advice(self, bad: str) -> str:
        last_file = os.path.join(self.save_dir, "last_checkpoint")
        others = [p for p in self.get_all_checkpoint_files() if os.path.abspath(p) != os.path.abspath(bad)]
        others.sort(key=lambda p: os.path.getmtime(p) if _is_local(p) else 0, reverse=True)
        intact = [p for p in others if not _is_local(p) or describe_file_start(p) == PYTORCH_ARCHIVE]
        if not intact:
            return (f"No other intact checkpoint is in {self.save_dir}: start again without --resume (a new "
                    f"OUTPUT_DIR keeps these files for inspection).")
        name = os.path.basename(intact[0])
        return (f"To continue from the newest other checkpoint, {name}, write its name into {last_file} "
                f"(echo {name} > {last_file}) and run with --resume again; or start again without --resume.")

    def load(
        self, path: str, checkpointables: Optional[List[str]] = None, *, skip_prefixes: Sequence[str] = ()
    ) -> Dict[str, Any]:
        """Loads the model weights and the named checkpointables from ``path``.

        A load that leaves part of the model outside the identity classifier (:data:`CLASSIFIER_PREFIXES`
        and ``skip_prefixes``) at its initialisation raises, unless the checkpointer was made with
        ``partial=True``, which reports those keys as WARNING tables. A classifier of another shape or
        absent from the file is one INFO line (fine-tuning on other identities); tensors of modules the
        model lacks are one WARNING table.

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
            ValueError: if the file is not a PyTorch checkpoint (what it is instead is said), holds Python
                objects other than tensors (never unpickled), holds NaN or Inf in the model or in a
                checkpointable to restore (nothing is loaded), or does not fit the model without
                ``partial`` (the model is then partly loaded; the message has the table of what matched).
        """
        if not path:
            self.logger.info("No checkpoint given: the model keeps its initial weights")
            return {}
        if _is_local(path) and not os.path.isfile(path):
            raise FileNotFoundError(
                f"Checkpoint {path} does not exist. Check MODEL.WEIGHTS (or the path given to "
                "resume_or_load), or pass an empty path to start from scratch."
            )
        self.logger.info("Loading checkpoint from %s", path)
        checkpoint = self._load_file(path if _is_local(path) else self.path_manager.get_local_path(path))
        restore = [k for k in (self.checkpointables if checkpointables is None else checkpointables) if k in checkpoint]
        bad = _non_finite({key: checkpoint[key] for key in ["model", *restore]})
        if bad:
            raise ValueError(
                f"{path} holds NaN or Inf in {len(bad)} tensor(s), first {', '.join(bad[:5])}: it was saved "
                "after the training diverged, by a fastreid version that did not check. Nothing was loaded; "
                "use an earlier checkpoint."
            )
        report = self.load_model_weights(checkpoint, skip_prefixes=skip_prefixes)
        self._check_fit(path, report, skip_prefixes)
        self._log_incompatible_keys(report)
        for key in restore:
            self.logger.info("Loading %s from %s", key, path)
            self.checkpointables[key].load_state_dict(checkpoint.pop(key))
        return checkpoint

    def _check_fit(self, path: str, report: IncompatibleKeys, skip_prefixes: Sequence[str]) -> None:
        fit = judge_fit(self.model, report, skip_prefixes)
        nothing = fit.total > 0 and fit.loaded == 0
        if self.partial or not (nothing or fit.missing or fit.shapes or fit.unused):
            return
        if nothing:
            headline = (f"No tensor of the file matches the model's {fit.total} tensors outside the classifier "
                        f"(keys in the file look like {(report.unexpected_keys or ['-'])[0]!r}, in the model "
                        f"like {(report.missing_keys or ['-'])[0]!r})")
        else:
            headline = (f"{fit.loaded} of the model's {fit.total} tensors outside the classifier loaded; "
                        f"{len(fit.missing)} are missing from the file, {len(fit.shapes)} have another shape, "
                        f"and {len(fit.unused)} tensors of the file for the model's modules were left unused")
        raise ValueError(
            f"{path} does not fit the model: {headline}. Training or evaluating would use those parts at their "
            "initialisation. Is it a checkpoint of another architecture (MODEL.META_ARCHITECTURE, "
            "MODEL.BACKBONE.NAME / DEPTH)? To load the tensors that fit and keep the rest as initialised, set "
            f"MODEL.WEIGHTS_PARTIAL True.\n{fit_table(weight_keys(self.model), report)}\n"
            f"{unfit_examples(report)}"
        )

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
        dropped = drop_unfit(self.model, checkpoint["model"], skip_prefixes) if skip_prefixes else []
        report = incompatible_keys_once(self.model, self._load_model(checkpoint))
        if not skip_prefixes:
            return report
        untouched = [key for key in report.missing_keys if in_modules(key, skip_prefixes)]
        if dropped or untouched:
            left_out = sorted(set(dropped) | set(untouched))
            self.logger.debug(
                "Training-only tensors under %s not loaded (the model keeps its own): %s",
                list(skip_prefixes), left_out,
            )
        return report._replace(missing_keys=[key for key in report.missing_keys if key not in untouched])

    def _load_file(self, f: str) -> Dict[str, Any]:
        checkpoint = read_checkpoint(f, weights_only=self.weights_only)
        if not isinstance(checkpoint, dict):
            raise ValueError(
                f"{f} holds a {type(checkpoint).__name__}, not a dict; fastreid checkpoints are dicts "
                "with a 'model' state dict (save weights with model.state_dict(), not the module)."
            )
        checkpoint, layout = to_fastreid_layout(checkpoint, set(self.model.state_dict()))
        if layout is not None:
            self.logger.info("Read %s as a %s checkpoint.", f, layout)
        elif "model" not in checkpoint:
            # A bare state dict, e.g. converted pretrained weights.
            checkpoint = {"model": checkpoint}
        return checkpoint

    def _log_incompatible_keys(self, incompatible: IncompatibleKeys) -> None:
        head_shapes = [row for row in incompatible.incorrect_shapes if in_modules(row[0], CLASSIFIER_PREFIXES)]
        head_missing = [k for k in incompatible.missing_keys if in_modules(k, CLASSIFIER_PREFIXES)]
        if head_shapes or head_missing:
            described = [f"{k} {tuple(in_file)} in checkpoint, {tuple(in_model)} in model"
                         for k, in_file, in_model in head_shapes]
            described += [f"{k} not in checkpoint" for k in head_missing]
            self.logger.info("Classifier not loaded (as when fine-tuning on other identities; it keeps its "
                             "initialisation): %s", "; ".join(described))
        shapes = [row for row in incompatible.incorrect_shapes if row not in head_shapes]
        missing = [k for k in incompatible.missing_keys if k not in head_missing]
        if shapes:
            rows = [(k, tuple(s_ckpt), tuple(s_model)) for k, s_ckpt, s_model in shapes]
            self.logger.warning(
                "Skipped loading %d parameter(s) whose shapes differ (left as initialised):\n%s",
                len(rows),
                _table(rows, ("key", "shape in checkpoint", "shape in model")),
            )
        if missing:
            self.logger.warning(
                "%d model key(s) not found in the checkpoint (left as initialised):\n%s",
                len(missing),
                _table([(k,) for k in missing], ("missing key",)),
            )
        if incompatible.unexpected_keys:
            self.logger.warning(
                "%d checkpoint key(s) not used by the model:\n%s",
                len(incompatible.unexpected_keys),
                _table([(k,) for k in incompatible.unexpected_keys], ("unexpected key",)),
            )


# Plain numpy numbers (torchreid stores its rank-1 as one) rebuilt from their dtype and bytes: data, not code.
# The second spelling is numpy 1.x's module path, found in files pickled with it.
_NUMPY_SCALAR_GLOBALS = [
    np._core.multiarray.scalar, np.dtype, type(np.dtype(np.float32)), type(np.dtype(np.float64)),
    (np._core.multiarray.scalar, "numpy.core.multiarray.scalar"),
]


def read_checkpoint(path: str, *, weights_only: bool = True) -> Any:
    """``torch.load`` of a local file onto the CPU, failing with an error that says what the file is.

    Args:
        path: the file.
        weights_only: refuse pickled Python objects other than tensors and plain containers (they could run
            code); False only for trusted files.

    Returns:
        The loaded object (for a checkpoint, a dict).

    Raises:
        ValueError: naming ``path`` and what it holds instead: Python objects (never unpickled; how to
            convert them), a truncated or damaged file, or another format (e.g. an HTML page, random bytes).
            torch's advice to retry with ``weights_only=False`` is never passed on.
    """
    try:
        with warnings.catch_warnings():
            # Raised for any pickle of protocol > 2, asking to file a torch issue; the load fails or works
            # regardless.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            with torch.serialization.safe_globals(_NUMPY_SCALAR_GLOBALS):
                return torch.load(path, map_location=torch.device("cpu"), weights_only=weights_only)
    except Exception as e:  # noqa: BLE001 - torch raises many types on foreign bytes
        # torch's own text may advise weights_only=False, which would let the file run code: never shown.
        cause = None if any(advice in str(e) for advice in _UNSAFE_ADVICE) else e
        raise _unreadable(path, e) from cause


def _unreadable(path: str, error: Exception) -> ValueError:
    """The error for a file ``torch.load`` failed on, saying what the file is instead."""
    refused = re.search(r"GLOBAL ([\w.]+)", str(error)) if isinstance(error, pickle.UnpicklingError) else None
    if refused:
        return ValueError(
            f"{path} holds Python objects other than tensors (first: {refused.group(1)}). fastreid loads "
            "checkpoints with torch.load(weights_only=True) and will not unpickle them, since unpickling can "
            "run any code. If you made the file, convert it where it was made: torch.save(model.state_dict(), "
            "PATH), or a dict of tensors, numbers and strings."
        )
    found = describe_file_start(path)
    if found == PYTORCH_ARCHIVE:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return ValueError(f"{path} is a damaged PyTorch checkpoint ({detail}); copy or download it again.")
    if "truncated" in found:
        return ValueError(f"{path} is truncated or damaged: {found}. If it was copied or downloaded, fetch it again.")
    return ValueError(f"{path} is not a PyTorch checkpoint ({found}).")


def load_inference_weights(
    model: nn.Module, path: str, *, skip_prefixes: Sequence[str] = INFERENCE_SKIP_PREFIXES, partial: bool = False
) -> Dict[str, Any]:
    """Loads a trained checkpoint into ``model`` for inference, leaving the training-only classifier aside.

    The classifier is as wide as the training set's class count, which an inference config often does not
    know (MODEL.HEADS.NUM_CLASSES 0 builds a 0×D classifier; ``EmbeddingHead`` does not use it in eval mode).
    Classifier tensors that fit the model are loaded, so a ``ClasHead`` (whose eval output is the logits)
    built with the trained class count stays exact; the others are dropped with one DEBUG line. Weights that
    leave other parts of the model unloaded, such as another architecture's, are an error unless ``partial``.

    Args:
        model: the model to fill; a (Distributed)DataParallel wrapper is unwrapped.
        path: checkpoint file (local, or a URL the PathManager handles).
        skip_prefixes: module paths of the training-only parts, fnmatch wildcards allowed.
        partial: accept a file that leaves other parts of the model at their initialisation, reporting
            them as WARNING tables (MODEL.WEIGHTS_PARTIAL).

    Returns:
        The file's other entries, e.g. the ``config`` and ``num_classes`` metadata of a run.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: as :meth:`Checkpointer.load`.
    """
    checkpointer = Checkpointer(model, save_to_disk=False, save_rng=False, partial=partial)
    return checkpointer.load(path, checkpointables=[], skip_prefixes=skip_prefixes)
