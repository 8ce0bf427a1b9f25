"""Datasets in the Market-1501 layout: Market-1501, DukeMTMC-reID (and the synthetic set, see synthetic.py).

Files are named ``<pid>_c<cam>s<seq>_<frame>_<box>.jpg`` (Market) or ``<pid>_c<cam>_f<frame>.jpg`` (Duke) in
``bounding_box_train``, ``query`` and ``bounding_box_test``. Market's pid -1 marks junk boxes (dropped) and
pid 0 distractors (kept in the gallery).
"""
import os
import re
from typing import List, Optional, Tuple

from .bases import ImageDataset, Record, find_dataset_dir, list_images, require_paths
from .build import DATASET_REGISTRY

_NAME_RE = re.compile(r"([-\d]+)_c(\d+)")


class MarketLayoutDataset(ImageDataset):
    """Shared parser of the Market-1501 folder layout; subclasses set the folder names and id ranges."""

    dataset_dirs: Tuple[str, ...] = ()
    max_pid: int = 0
    num_cameras: int = 0
    _junk_pids = (0, -1)

    def __init__(self, root: str = "datasets", *, extra_gallery_dir: Optional[str] = None, **kwargs) -> None:
        self.data_dir = find_dataset_dir(root, self.dataset_dirs, self.dataset_name)
        dirs = [os.path.join(self.data_dir, d) for d in ("bounding_box_train", "query", "bounding_box_test")]
        require_paths(self.dataset_name, *dirs)
        train, query, gallery = (self.process_dir(d) for d in dirs)
        self.split_sources = dict(zip(("train", "query", "gallery"), dirs))
        if extra_gallery_dir is not None:
            extra = os.path.join(self.data_dir, extra_gallery_dir)
            require_paths(self.dataset_name, extra)
            gallery += self.process_dir(extra)
            self.split_sources["gallery"] += f" and {extra}"
        super().__init__(train, query, gallery, **kwargs)

    def process_dir(self, folder: str) -> List[Record]:
        """Records of the images in ``folder`` with 0-based camera ids; junk (pid -1) is dropped."""
        records = []
        for path in list_images(folder):
            match = _NAME_RE.match(os.path.basename(path))
            if match is None:
                raise ValueError(f"{self.dataset_name}: cannot parse '<pid>_c<cam>' from the file name {path}")
            pid, camid = int(match.group(1)), int(match.group(2))
            if pid == -1:
                continue
            if not (0 <= pid <= self.max_pid and 1 <= camid <= self.num_cameras):
                raise ValueError(
                    f"{self.dataset_name}: {path} has pid {pid} / camera {camid} outside "
                    f"[0, {self.max_pid}] / [1, {self.num_cameras}]"
                )
            records.append((path, pid, camid - 1))
        return records


@DATASET_REGISTRY.register()
class Market1501(MarketLayoutDataset):
    """Market-1501 (Zheng et al., ICCV 2015): 1501 ids, 6 cameras.

    Args:
        root: datasets root holding ``Market-1501-v15.09.15/``.
        market1501_500k: add the 500k distractors of ``images/`` to the gallery.
    """

    dataset_dirs = ("Market-1501-v15.09.15", "market1501/Market-1501-v15.09.15", "market1501")
    max_pid = 1501
    num_cameras = 6

    def __init__(self, root: str = "datasets", market1501_500k: bool = False, **kwargs) -> None:
        super().__init__(root, extra_gallery_dir="images" if market1501_500k else None, **kwargs)

    @classmethod
    def from_config(cls, cfg) -> dict:
        return {"market1501_500k": cfg.DATASETS.MARKET1501.WITH_500K}


@DATASET_REGISTRY.register()
class DukeMTMC(MarketLayoutDataset):
    """DukeMTMC-reID (Zheng et al., ICCV 2017): 1404 ids + 408 distractor ids, 8 cameras."""

    dataset_dirs = ("DukeMTMC-reID", "dukemtmc-reid/DukeMTMC-reID")
    max_pid = 9999
    num_cameras = 8
    _junk_pids = ()
