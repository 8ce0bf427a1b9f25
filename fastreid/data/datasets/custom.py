"""CustomReID: a user's own data described by DATASETS.CUSTOM.* alone.

Each subset (train, query, gallery) is either a folder of crops named ``<pid>_c<cam>...`` (e.g.
``0002_c1_0001.jpg``; pid -1 = junk, skipped) or a list file whose lines are ``relative/path pid camid``.
Paths are relative to the dataset folder ``DIR`` (itself relative to DATASETS.ROOT unless absolute).
"""
import os
import re
from typing import List, Optional, Tuple

from .bases import (DatasetNotFoundError, ImageDataset, README_HINT, Record, list_images,
                    queries_without_match)
from .build import DATASET_REGISTRY

_NAME_RE = re.compile(r"(-?\d+)_c(\d+)")


def labels_from_name(path: str) -> Optional[Tuple[int, int]]:
    """(pid, camid) of an image named ``<pid>_c<cam>...`` (Market-1501 style, e.g. 0002_c1_0001.jpg), else None."""
    match = _NAME_RE.match(os.path.basename(path))
    return (int(match.group(1)), int(match.group(2))) if match else None


@DATASET_REGISTRY.register()
class CustomReID(ImageDataset):
    """A folder- or list-file-described dataset (see the module docstring).

    Args:
        root: datasets root.
        dir: dataset folder, relative to ``root`` or absolute.
        train_dir, query_dir, gallery_dir: image folders inside ``dir``, used when the list is empty.
        train_list, query_list, gallery_list: list files inside ``dir`` (``path pid camid`` lines).
    """

    def __init__(self, root: str = "datasets", dir: str = "custom", train_dir: str = "train",
                 query_dir: str = "query", gallery_dir: str = "gallery", train_list: str = "",
                 query_list: str = "", gallery_list: str = "", **kwargs) -> None:
        self.data_dir = os.path.join(root, dir)
        if not os.path.isdir(self.data_dir):
            raise DatasetNotFoundError(f"CustomReID: expected the folder '{self.data_dir}' (DATASETS.CUSTOM.DIR "
                                       f"under DATASETS.ROOT). {README_HINT}")
        subsets = {"train": (train_dir, train_list), "query": (query_dir, query_list),
                   "gallery": (gallery_dir, gallery_list)}
        self.split_sources = {split: os.path.join(self.data_dir, lst or folder)
                              for split, (folder, lst) in subsets.items()}
        train, query, gallery = (self._load(folder, lst) for folder, lst in subsets.values())
        self._validate(query, gallery)
        super().__init__(train, query, gallery, **kwargs)

    @classmethod
    def from_config(cls, cfg) -> dict:
        c = cfg.DATASETS.CUSTOM
        return dict(dir=c.DIR, train_dir=c.TRAIN_DIR, query_dir=c.QUERY_DIR, gallery_dir=c.GALLERY_DIR,
                    train_list=c.TRAIN_LIST, query_list=c.QUERY_LIST, gallery_list=c.GALLERY_LIST)

    def _load(self, folder: str, list_file: str) -> List[Record]:
        if list_file:
            return self._from_list(os.path.join(self.data_dir, list_file))
        path = os.path.join(self.data_dir, folder)
        if not folder or not os.path.isdir(path):
            raise DatasetNotFoundError(f"CustomReID: expected the image folder '{path}' or a list file. {README_HINT}")
        records = []
        for img in list_images(path):
            labels = labels_from_name(img)
            if labels is None:
                raise ValueError(f"CustomReID: the file name {img} does not start with '<pid>_c<cam>' "
                                 "(e.g. 0002_c1_0001.jpg); rename it or use a list file")
            pid, cam = labels
            if pid != -1:
                records.append((img, pid, cam))
        return records

    def _from_list(self, list_path: str) -> List[Record]:
        if not os.path.isfile(list_path):
            raise DatasetNotFoundError(f"CustomReID: expected the list file '{list_path}'. {README_HINT}")
        records = []
        with open(list_path) as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                parts = line.split()
                error: Optional[str] = None
                if len(parts) != 3:
                    error = f"expected 'path pid camid', got {len(parts)} fields"
                elif not re.fullmatch(r"-?\d+", parts[1]) or not re.fullmatch(r"\d+", parts[2]):
                    error = f"pid '{parts[1]}' and camid '{parts[2]}' must be integers (camid >= 0)"
                elif not os.path.isfile(os.path.join(self.data_dir, parts[0])):
                    error = f"image '{os.path.join(self.data_dir, parts[0])}' does not exist"
                if error:
                    raise ValueError(f"CustomReID: {list_path}:{line_no}: {error}")
                if int(parts[1]) != -1:
                    records.append((os.path.join(self.data_dir, parts[0]), int(parts[1]), int(parts[2])))
        return records

    def _validate(self, query: List[Record], gallery: List[Record]) -> None:
        # Fails as soon as the folders are read; fastreid.data.validation warns about a partial mismatch.
        if query and gallery and len(queries_without_match(query, gallery)) == len(query):
            raise ValueError(
                f"CustomReID: no query has a gallery image of the same id from another camera (query: "
                f"{self.split_sources['query']}, gallery: {self.split_sources['gallery']}); check the ids and "
                "cameras of query and gallery"
            )
