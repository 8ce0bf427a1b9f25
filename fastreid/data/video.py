"""The torch dataset over tracklet (video) records: ``seq_len`` frames per tracklet, one augmentation each.

Frame sampling follows torchreid's ``VideoDataset`` (``sample_method``):

- ``"evenly"``: a tracklet of ``n >= seq_len`` frames is cut to ``n - n % seq_len`` frames and every
  ``(n // seq_len)``-th frame is taken from the first; a shorter one is padded by repeating its last frame.
- ``"random"``: ``seq_len`` distinct frames drawn at random (with replacement when ``n < seq_len``), then sorted
  back into temporal order.
- ``"all"``: every frame, so tracklets differ in length and a batch holds one tracklet (see
  :func:`collate_tracklets`); the model bounds memory by running the frames in chunks (TEST.FRAME_CHUNK).
"""
import logging
import random
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import default_collate, get_worker_info

from fastreid.utils.memory import release_freed_memory

from .common import CommDataset
from .data_utils import BadImageError, preserved_rng, read_image, seed_rng
from .datasets.bases import Record

logger = logging.getLogger(__name__)

__all__ = ["SAMPLE_METHODS", "TrackletDataset", "collate_tracklets", "sample_frame_indices"]

SAMPLE_METHODS = ("evenly", "random", "all")


def sample_frame_indices(num_frames: int, seq_len: int, method: str, rng: Any = np.random) -> List[int]:
    """Indices of the frames of a ``num_frames``-frame tracklet that a sample uses, in temporal order.

    Args:
        num_frames: frames in the tracklet (at least 1).
        seq_len: frames per sample for ``"evenly"`` and ``"random"`` (ignored by ``"all"``).
        method: ``"evenly"``, ``"random"`` or ``"all"`` (see the module docstring for the rules).
        rng: anything with numpy's ``choice(a, size, replace)`` (a ``Generator``, a ``RandomState`` or the
            ``np.random`` module, the default); only ``"random"`` draws from it.

    Returns:
        ``seq_len`` indices (``num_frames`` for ``"all"``), non-decreasing.
    """
    if num_frames < 1:
        raise ValueError("A tracklet needs at least one frame; got an empty one")
    if method == "all":
        return list(range(num_frames))
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1 for sample method {method!r}, got {seq_len} (INPUT.SEQ_LEN)")
    if method == "random":
        chosen = rng.choice(num_frames, size=seq_len, replace=num_frames < seq_len)
        return sorted(int(i) for i in chosen)
    if method == "evenly":
        if num_frames >= seq_len:
            step = num_frames // seq_len
            return list(range(0, step * seq_len, step))
        return list(range(num_frames)) + [num_frames - 1] * (seq_len - num_frames)
    raise ValueError(f"Unknown frame sample method {method!r}: choose one of {', '.join(SAMPLE_METHODS)}")


def _global_rng_state() -> Tuple[Any, Any, Any]:
    return torch.default_generator.get_state(), random.getstate(), np.random.get_state()


def _restore_global_rng(state: Tuple[Any, Any, Any]) -> None:
    torch.default_generator.set_state(state[0])
    random.setstate(state[1])
    np.random.set_state(state[2])


class TrackletDataset(CommDataset):
    """Tracklet records read and transformed into sample dicts of ``seq_len`` frames.

    Relabelling, ``set_ids``, bad-image handling and per-sample seeding are those of :class:`CommDataset`
    (so identity samplers, which need only ``pids``/``camids``/``set_ids``, sample tracklets). One augmentation
    is drawn per tracklet and applied to all its frames: the global random generators are put back in the same
    state before each frame's transform (from the sample seed with an ``(index, seed)`` index, else as they
    are). Transforms whose draws depend on the image size get the same draws only for frames of one size, as
    in every re-id video set; ``RandomPatch`` keeps a patch pool across calls and so varies between frames.

    Args:
        img_items: ``(frame_paths, pid, camid, *extra)`` records, ``frame_paths`` a sequence of paths in
            temporal order.
        transform: applied to each PIL frame; must return a ``3 x H x W`` tensor.
        seq_len: frames per sample for ``"evenly"`` / ``"random"`` (INPUT.SEQ_LEN).
        sample_method: ``"evenly"``, ``"random"`` or ``"all"`` (see :func:`sample_frame_indices`).
        comm_args: ``relabel``, ``set_ids`` and ``skip_bad_images`` of :class:`CommDataset`; with
            ``skip_bad_images`` a tracklet with an unreadable sampled frame is replaced by the next readable
            tracklet (logged and counted) instead of raising.
    """

    def __init__(self, img_items: Sequence[Record], transform: Optional[Callable] = None, *, seq_len: int = 15,
                 sample_method: str = "evenly", **comm_args: Any) -> None:
        if sample_method not in SAMPLE_METHODS:
            raise ValueError(f"Unknown frame sample method {sample_method!r} (INPUT.SAMPLE_METHOD_TRAIN / "
                             f"INPUT.SAMPLE_METHOD_TEST): choose one of {', '.join(SAMPLE_METHODS)}")
        if sample_method != "all" and seq_len < 1:
            raise ValueError(f"INPUT.SEQ_LEN must be >= 1 with sample method {sample_method!r}, got {seq_len}")
        for record in img_items:
            frames = record[0]
            if isinstance(frames, str) or len(frames) == 0:
                raise ValueError(f"A tracklet record needs a non-empty tuple of frame paths as its first field, "
                                 f"got {frames!r} (pid {record[1]}); image records belong in CommDataset")
        super().__init__(img_items, transform, **comm_args)
        self.seq_len = seq_len
        self.sample_method = sample_method

    def __getitems__(self, indices: Sequence[Union[int, Tuple[int, int]]]) -> List[Dict[str, Any]]:
        """The samples of a batch of indices (see :meth:`CommDataset.__getitem__`).

        With ``(index, seed)`` pairs the caller's random streams are left untouched; with plain indices the
        global generators advance as for one image transform per tracklet (plus the draws of ``"random"``).
        """
        if self.sample_method == "all" and get_worker_info() is not None:
            # Whole tracklets differ in length; in a loader worker nothing else trims the heap between batches
            # (see fastreid.utils.memory), so the worker's resident size would grow with every tracklet read. In
            # the main process inference_on_dataset trims after each batch.
            release_freed_memory()
        seeded = any(isinstance(index, tuple) for index in indices)
        if seeded:
            with preserved_rng():
                return [self._tracklet(index) for index in indices]
        return [self._tracklet(index) for index in indices]

    def _read_frames(self, frames: Sequence[str], chosen: Sequence[int]) -> Dict[int, Any]:
        return {i: read_image(frames[i]) for i in sorted(set(chosen))}

    def _tracklet(self, index: Union[int, Tuple[int, int]]) -> Dict[str, Any]:
        seed = None
        if isinstance(index, tuple):
            index, seed = index
        if seed is not None:
            seed_rng(seed)
        for offset in range(len(self.img_items)):
            i = (index + offset) % len(self.img_items)
            frames = self.img_items[i][0]
            chosen = sample_frame_indices(len(frames), self.seq_len, self.sample_method)
            try:
                images = self._read_frames(frames, chosen)
                break
            except BadImageError as e:
                if not self.skip_bad_images:
                    raise
                self.num_skipped += 1
                logger.warning("Skipping tracklet %d with a bad frame (%d skipped in this process so far): %s",
                               i, self.num_skipped, e)
        else:
            raise BadImageError("No tracklet of the dataset has readable frames")
        return {
            "images": self._transform_all([images[c] for c in chosen]),
            "targets": self.pids[i],
            "camids": self.camids[i],
            "img_paths": tuple(frames),
            "indices": index,
        }

    def _transform_all(self, images: List[Any]) -> torch.Tensor:
        """``S x 3 x H x W``: every frame transformed with the same random draws."""
        if self.transform is None:
            raise ValueError("TrackletDataset needs a transform returning 3 x H x W tensors to stack frames")
        state = _global_rng_state()
        out = []
        for k, img in enumerate(images):
            if k:
                _restore_global_rng(state)
            out.append(self.transform(img))
        return torch.stack(out)


def collate_tracklets(samples: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Batch tracklet samples: ``images`` ``B x S x 3 x H x W``, ``targets`` / ``camids`` / ``indices`` long ``B``,
    ``img_paths`` a list of B tuples of the tracklets' frame paths (all frames, not just the sampled ones).

    Raises:
        ValueError: the samples have different frame counts (``"all"`` sampling with a batch of several).
    """
    lengths = {len(s["images"]) for s in samples}
    if len(lengths) > 1:
        raise ValueError(f"Tracklets of a batch have different frame counts {sorted(lengths)}: with sample "
                         "method 'all' a batch must hold one tracklet (batch size 1)")
    batch = default_collate([{k: v for k, v in s.items() if k != "img_paths"} for s in samples])
    batch["img_paths"] = [tuple(s["img_paths"]) for s in samples]
    return batch
