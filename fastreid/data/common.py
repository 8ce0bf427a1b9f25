"""The torch dataset over re-id records, with deterministic relabelling."""
import contextlib
import logging
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from torch.utils.data import Dataset

from .data_utils import BadImageError, preserved_rng, read_image, seed_rng
from .datasets.bases import Record

logger = logging.getLogger(__name__)


def natural_key(value: Any) -> List[Any]:
    """Sort key ordering ``"Market1501_2"`` before ``"Market1501_10"`` (digit runs compare as numbers)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(value))]


class CommDataset(Dataset):
    """Records of one or more datasets, read and transformed into sample dicts.

    With ``relabel`` (training) ids and cameras are mapped to ``0..N-1`` in sorted (natural) order, so the
    mapping is the same on every run and every rank; otherwise (test) the raw integer ids are kept.

    Args:
        img_items: ``(img_path, pid, camid, *extra)`` records.
        transform: applied to the PIL image; must return a ``3 x H x W`` tensor.
        relabel: map ids and cameras to contiguous integers.
        set_ids: per-record index of the source dataset (for multi-dataset samplers); default all 0.
        skip_bad_images: replace an unreadable image by the next readable record (logged and counted)
            instead of raising.

    Attributes:
        pids, camids, set_ids: per-record integer labels, as returned in samples.
        num_classes: number of distinct ids (the classifier size when training).
        num_cameras: number of distinct cameras.
    """

    def __init__(
        self,
        img_items: Sequence[Record],
        transform: Optional[Callable] = None,
        relabel: bool = True,
        set_ids: Optional[Sequence[int]] = None,
        skip_bad_images: bool = False,
    ) -> None:
        self.img_items = list(img_items)
        self.transform = transform
        self.relabel = relabel
        self.skip_bad_images = skip_bad_images
        self.num_skipped = 0
        raw_pids = [r[1] for r in self.img_items]
        raw_cams = [r[2] for r in self.img_items]
        if relabel:
            self.pid_dict = {p: i for i, p in enumerate(sorted(set(raw_pids), key=natural_key))}
            self.cam_dict = {c: i for i, c in enumerate(sorted(set(raw_cams), key=natural_key))}
            self.pids = [self.pid_dict[p] for p in raw_pids]
            self.camids = [self.cam_dict[c] for c in raw_cams]
        else:
            self.pids, self.camids = [int(p) for p in raw_pids], [int(c) for c in raw_cams]
        self.set_ids = list(set_ids) if set_ids is not None else [0] * len(self.img_items)
        if len(self.set_ids) != len(self.img_items):
            raise ValueError(f"set_ids has {len(self.set_ids)} entries for {len(self.img_items)} records")
        self.num_classes = len(set(self.pids))
        self.num_cameras = len(set(self.camids))

    def __len__(self) -> int:
        return len(self.img_items)

    def _load(self, index: int):
        for offset in range(len(self.img_items)):
            i = (index + offset) % len(self.img_items)
            path = self.img_items[i][0]
            try:
                return i, read_image(path)
            except BadImageError as e:
                if not self.skip_bad_images:
                    raise
                self.num_skipped += 1
                logger.warning("Skipping bad image (%d skipped in this process so far): %s", self.num_skipped, e)
        raise BadImageError("No readable image in the dataset")

    def __getitem__(self, index: Union[int, Tuple[int, int]]) -> Dict[str, Any]:
        """Sample ``index``: ``images`` (``3 x H x W`` after the transform), ``targets``, ``camids``, ``img_paths``.

        Args:
            index: a record index, transformed with the global random generators as they are; or an
                ``(index, seed)`` pair (from :class:`fastreid.data.samplers.SeededSampler`), transformed with
                the global generators seeded from ``seed`` (:func:`fastreid.data.data_utils.seed_rng`) and
                restored afterwards, so the result depends only on the pair and the caller's random streams
                are left untouched.
        """
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[Union[int, Tuple[int, int]]]) -> List[Dict[str, Any]]:
        """The samples of a batch of indices (see :meth:`__getitem__`); the data loader calls this.

        Random states are saved and restored once per batch rather than per sample.
        """
        seeded = any(isinstance(index, tuple) for index in indices)
        with preserved_rng() if seeded else contextlib.nullcontext():
            return [self._sample(index) for index in indices]

    def _sample(self, index: Union[int, Tuple[int, int]]) -> Dict[str, Any]:
        seed = None
        if isinstance(index, tuple):
            index, seed = index
        i, img = self._load(index)
        if self.transform is not None:
            if seed is not None:
                seed_rng(seed)
            img = self.transform(img)
        return {"images": img, "targets": self.pids[i], "camids": self.camids[i], "img_paths": self.img_items[i][0]}
