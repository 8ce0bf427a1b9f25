"""Base classes of re-id datasets: lists of ``(img_path, pid, camid, *extra)`` records per subset."""
import logging
import os
from typing import Any, Dict, Iterable, List, Sequence, Tuple

from tabulate import tabulate

logger = logging.getLogger(__name__)

Record = Tuple[Any, ...]
"""One sample: ``(img_path, pid, camid, *extra)``. ``img_path`` is a path, or a tuple of frame paths for a tracklet."""

README_HINT = "See datasets/README.md for the expected folder layout and where to obtain the dataset."


class DatasetNotFoundError(FileNotFoundError):
    """A dataset folder or file that is missing or not in the expected layout."""


def require_paths(dataset: str, *paths: str, layout: str = "") -> None:
    """Raise :class:`DatasetNotFoundError` naming the first of ``paths`` that does not exist.

    Args:
        dataset: dataset name shown in the message.
        paths: files or folders that the dataset's layout requires.
        layout: the expected folder layout, shown in the message instead of the pointer to datasets/README.md
            (for datasets documented elsewhere, such as a project's).
    """
    hint = f"Expected layout under the datasets root (DATASETS.ROOT):\n{layout}" if layout else README_HINT
    for path in paths:
        if not os.path.exists(path):
            raise DatasetNotFoundError(f"{dataset}: expected '{path}' but it does not exist. {hint}")


def find_dataset_dir(root: str, candidates: Sequence[str], dataset: str) -> str:
    """The first of ``root/<candidate>`` that is a folder.

    Raises:
        DatasetNotFoundError: naming the expected folder when none exists.
    """
    for candidate in candidates:
        path = os.path.join(root, candidate)
        if os.path.isdir(path):
            return path
    others = f" (or {', '.join(candidates[1:])})" if len(candidates) > 1 else ""
    raise DatasetNotFoundError(
        f"{dataset}: expected the folder '{os.path.join(root, candidates[0])}'{others} under the datasets root "
        f"'{root}' (DATASETS.ROOT, else $FASTREID_DATASETS, else ./datasets). {README_HINT}"
    )


def list_images(folder: str, exts: Sequence[str] = (".jpg", ".jpeg", ".png", ".bmp")) -> List[str]:
    """Sorted paths of the image files directly inside ``folder``."""
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(tuple(exts)))
    return [os.path.join(folder, n) for n in names]


def queries_without_match(query: Sequence[Record], gallery: Sequence[Record]) -> List[Record]:
    """The queries that the evaluation protocol skips: no gallery record has their identity from another
    camera (gallery records of the query's identity and camera are excluded, as in Market-1501).

    Args:
        query, gallery: records with raw ``pid`` and ``camid``.
    """
    cameras_of: Dict[Any, set] = {}
    for record in gallery:
        cameras_of.setdefault(record[1], set()).add(record[2])
    return [r for r in query if not cameras_of.get(r[1], set()) - {r[2]}]


class Dataset:
    """A re-id dataset: ``train``, ``query`` and ``gallery`` lists of records.

    Train records get dataset-scoped string ids (``"Market1501_12"``, camera ``"Market1501_0"``) so that
    several datasets can be trained together without id clashes; :class:`fastreid.data.CommDataset` relabels
    them to ``0..N-1`` in sorted order. Query and gallery records keep the raw integer ids of the dataset.
    Records may carry extra fields after ``camid``; they are kept as they are. ``img_path`` may be a tuple
    of frame paths, so the same class serves tracklet (video) datasets.

    Args:
        train, query, gallery: records with raw integer ``pid``/``camid``.
        combineall: also train on query and gallery (their ids get a ``_test_`` scope, junk ids are dropped).
        verbose: log the subset statistics.

    Attributes:
        split_sources: ``{"train" | "query" | "gallery": folder or list file}`` that a subclass read each
            subset from (set before calling this constructor), for error messages; see :meth:`split_source`.
    """

    item_name = "images"  # what one record is, in the logged statistics

    split_sources: Dict[str, str] = {}

    #: Ids that are not persons (junk / distractors), dropped when ``combineall`` merges test data into train.
    _junk_pids: Tuple[int, ...] = ()

    def __init__(
        self,
        train: List[Record],
        query: List[Record],
        gallery: List[Record],
        *,
        combineall: bool = False,
        verbose: bool = True,
    ) -> None:
        self.train = [self._scoped(r, "") for r in train]
        self.query = list(query)
        self.gallery = list(gallery)
        if combineall:
            self.combine_all()
        if verbose:
            self.show_train()
            self.show_test()

    @classmethod
    def from_config(cls, cfg) -> dict:
        """Constructor keyword arguments taken from the config (besides ``root`` and ``combineall``)."""
        return {}

    @property
    def dataset_name(self) -> str:
        """The prefix of train ids: the registered class name."""
        return type(self).__name__

    def split_source(self, split: str) -> str:
        """Where the subset ``split`` (``"train"``, ``"query"`` or ``"gallery"``) was read from: its entry in
        :attr:`split_sources`, else the dataset folder (``data_dir``), else the folder of its first image;
        ``""`` when unknown."""
        if split in self.split_sources:
            return self.split_sources[split]
        if getattr(self, "data_dir", ""):
            return self.data_dir
        records = getattr(self, split, None) or []
        if records:
            first = records[0][0]
            return os.path.dirname(first if isinstance(first, str) else first[0])
        return ""

    def _scoped(self, record: Record, scope: str) -> Record:
        img_path, pid, camid, *extra = record
        prefix = f"{self.dataset_name}_{scope}"
        return (img_path, f"{prefix}{pid}", f"{prefix}{camid}", *extra)

    def combine_all(self) -> None:
        """Append query and gallery records (minus junk ids) to ``train`` with their own id scope."""
        for record in self.query + self.gallery:
            if record[1] in self._junk_pids:
                continue
            self.train.append(self._scoped(record, "test_"))

    @staticmethod
    def parse_data(data: Iterable[Record]) -> Tuple[int, int, int]:
        """Return ``(num_pids, num_images, num_cameras)`` of a record list (a tracklet counts as one image)."""
        data = list(data)
        return len({r[1] for r in data}), len(data), len({r[2] for r in data})

    def _table(self, rows: List[Tuple[str, List[Record]]]) -> str:
        body = [(name, *self.parse_data(data)) for name, data in rows]
        return tabulate(body, headers=["subset", "# ids", f"# {self.item_name}", "# cameras"], tablefmt="pipe")

    def show_train(self) -> None:
        """Log the train subset statistics as a table."""
        logger.info("=> Loaded %s (train)\n%s", self.dataset_name, self._table([("train", self.train)]))

    def show_test(self) -> None:
        """Log the query and gallery statistics as a table."""
        table = self._table([("query", self.query), ("gallery", self.gallery)])
        logger.info("=> Loaded %s (test)\n%s", self.dataset_name, table)


class ImageDataset(Dataset):
    """A dataset of single images (``img_path`` is one file)."""


class VideoDataset(Dataset):
    """A dataset of tracklets (``img_path`` is a tuple of frame paths)."""

    item_name = "tracklets"
