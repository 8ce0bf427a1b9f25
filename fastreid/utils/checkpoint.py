"""Checkpointing: atomic saves, safe loads and readable reports of what did not match.

:class:`Checkpointer` extends fvcore's: a save writes a temporary file in the same folder, fsyncs it and
renames it over the target (also for ``last_checkpoint``), so a crash mid-save leaves the previous
checkpoint intact; files are loaded with ``torch.load(..., weights_only=True)`` by default, so a checkpoint
cannot run code; the random number generators (python, numpy, torch) are saved and restored on resume.
"""
import hashlib
import logging
import os
import pickle
import random
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from fvcore.common.checkpoint import Checkpointer as _FvcoreCheckpointer
from fvcore.common.checkpoint import _filter_reused_missing_keys, _IncompatibleKeys
from tabulate import tabulate
from torch import nn

from . import comm
from .file_io import PathManager, atomic_write

__all__ = ["Checkpointer", "RNGState"]

logger = logging.getLogger(__name__)


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


class Checkpointer(_FvcoreCheckpointer):
    """fvcore ``Checkpointer`` with atomic saves, ``weights_only`` loads, RNG state and readable reports.

    Example::

        checkpointer = Checkpointer(model, cfg.OUTPUT_DIR, optimizer=optimizer, scheduler=scheduler,
                                    trainer=trainer)
        extra = checkpointer.resume_or_load(cfg.MODEL.WEIGHTS, resume=True)
        start_iter = extra.get("iteration", -1) + 1   # when resuming; see ``resume_or_load``

    Files hold ``{"model": state_dict, <checkpointable>: state, "rng": ..., **extra}``; a file that is a bare
    model state dict (e.g. converted pretrained weights) is also accepted.
    """

    def __init__(
        self,
        model: nn.Module,
        save_dir: str = "",
        *,
        save_to_disk: Optional[bool] = None,
        weights_only: bool = True,
        save_rng: bool = True,
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
            checkpointables: objects with ``state_dict()`` / ``load_state_dict()`` (optimizer, scheduler,
                trainer, ...), saved under their keyword.
        """
        if save_to_disk is None:
            save_to_disk = comm.is_main_process()
        super().__init__(model, save_dir, save_to_disk=save_to_disk, **checkpointables)
        self.path_manager = PathManager
        self.weights_only = weights_only
        if save_rng:
            self.add_checkpointable("rng", RNGState())

    def save(self, name: str, *, tag_last: bool = True, **kwargs: Any) -> None:
        """Writes ``<save_dir>/<name>.pth`` atomically.

        Args:
            name: file name without extension.
            tag_last: record it in ``last_checkpoint`` (the file :meth:`resume_or_load` resumes from);
                False for side copies such as the best model.
            kwargs: extra data to store (e.g. ``iteration``, ``epoch``); plain numbers, strings, tensors.
        """
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
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

    def load(self, path: str, checkpointables: Optional[List[str]] = None) -> Dict[str, Any]:
        """Loads a checkpoint; see fvcore's ``Checkpointer.load``.

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            ValueError: if the file is not a torch checkpoint, or cannot be loaded with ``weights_only``.
        """
        if path and _is_local(path) and not os.path.isfile(path):
            raise FileNotFoundError(
                f"Checkpoint '{path}' does not exist. Check MODEL.WEIGHTS (or the path given to "
                "resume_or_load), or pass an empty path to start from scratch."
            )
        return super().load(path, checkpointables=checkpointables)

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

    def _log_incompatible_keys(self, incompatible: _IncompatibleKeys) -> None:
        if incompatible.incorrect_shapes:
            rows = [(k, tuple(s_ckpt), tuple(s_model)) for k, s_ckpt, s_model in incompatible.incorrect_shapes]
            self.logger.warning(
                "Skipped loading %d parameter(s) whose shapes differ (expected when e.g. the number of "
                "identities changed):\n%s",
                len(rows),
                _table(rows, ("key", "shape in checkpoint", "shape in model")),
            )
        if incompatible.missing_keys:
            missing = sorted(_filter_reused_missing_keys(self.model, incompatible.missing_keys))
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
                _table([(k,) for k in sorted(incompatible.unexpected_keys)], ("unexpected key",)),
            )

