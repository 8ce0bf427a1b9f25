"""DukeMTMC-VideoReID (Wu et al., CVPR 2018): 702 train ids, 702 test ids + 408 gallery distractor ids, 8 cameras.

Layout under the datasets root (``DukeMTMC-VideoReID.zip`` unpacked)::

    DukeMTMC-VideoReID/train/0001/0001/0001_C6_F0099_X30823.jpg   # <pid>/<tracklet>/<pid>_C<cam>_F<frame>_X...
    DukeMTMC-VideoReID/query/...    DukeMTMC-VideoReID/gallery/...

Older copies name frames without underscores (``0001C6F0099X30823.jpg``); both are read. A tracklet's frames
are ordered by their frame number; its camera is read from its first frame name. Query and gallery are the
folders as published (one query tracklet per test id). ``min_seq_len`` drops shorter tracklets from every
subset, as torchreid does.
"""
import os
import re
from typing import List

from .bases import (DatasetNotFoundError, README_HINT, Record, VideoDataset, find_dataset_dir, list_images,
                    require_paths)
from .build import DATASET_REGISTRY

_FRAME_RE = re.compile(r"^\d+_?C(\d+)_?F(\d+)", re.IGNORECASE)


@DATASET_REGISTRY.register()
class DukeMTMCVidReID(VideoDataset):
    """DukeMTMC-VideoReID (see the module docstring for the layout and protocol).

    Args:
        root: datasets root holding ``DukeMTMC-VideoReID/`` (or ``dukemtmc-vidreid/DukeMTMC-VideoReID/``, as
            torchreid places it).
        min_seq_len: drop tracklets with fewer frames (0 = keep all).
    """

    dataset_dirs = ("DukeMTMC-VideoReID", "dukemtmc-vidreid/DukeMTMC-VideoReID")
    num_cameras = 8
    _junk_pids = ()

    def __init__(self, root: str = "datasets", min_seq_len: int = 0, **kwargs) -> None:
        self.data_dir = find_dataset_dir(root, self.dataset_dirs, self.dataset_name)
        dirs = [os.path.join(self.data_dir, d) for d in ("train", "query", "gallery")]
        require_paths(self.dataset_name, *dirs)
        self.min_seq_len = min_seq_len
        self.split_sources = dict(zip(("train", "query", "gallery"), dirs))
        train, query, gallery = (self.process_dir(d) for d in dirs)
        super().__init__(train, query, gallery, **kwargs)

    @classmethod
    def from_config(cls, cfg) -> dict:
        return {"min_seq_len": cfg.DATASETS.MIN_SEQ_LEN}

    def process_dir(self, folder: str) -> List[Record]:
        """Records of the ``<pid>/<tracklet>/`` folders under ``folder``, frames in temporal order."""
        records, found = [], 0
        for pid_name in sorted(os.listdir(folder)):
            pid_dir = os.path.join(folder, pid_name)
            if not os.path.isdir(pid_dir):
                continue
            if not pid_name.isdigit():
                raise ValueError(f"{self.dataset_name}: expected numeric person folders in {folder}; got '{pid_name}'")
            for tracklet in sorted(os.listdir(pid_dir)):
                tracklet_dir = os.path.join(pid_dir, tracklet)
                if os.path.isdir(tracklet_dir):
                    record = self._tracklet(tracklet_dir, int(pid_name))
                    found += bool(record[0])
                    if record[0] and len(record[0]) >= self.min_seq_len:
                        records.append(record)
        if not found:
            raise DatasetNotFoundError(f"{self.dataset_name}: found no tracklets in '{folder}' (expected "
                                       f"<pid>/<tracklet>/*.jpg). {README_HINT}")
        return records

    def _tracklet(self, folder: str, pid: int) -> Record:
        frames = []
        for path in list_images(folder):
            match = _FRAME_RE.match(os.path.basename(path))
            if match is None:
                raise ValueError(f"{self.dataset_name}: cannot parse '<pid>_C<cam>_F<frame>' from the file name {path}")
            frames.append((int(match.group(2)), int(match.group(1)), path))
        frames.sort()
        cameras = {cam for _, cam, _ in frames}
        if len(cameras) > 1 or not all(1 <= c <= self.num_cameras for c in cameras):
            raise ValueError(f"{self.dataset_name}: the frames of {folder} have cameras {sorted(cameras)}; expected "
                             f"one camera in 1-{self.num_cameras}")
        camid = frames[0][1] - 1 if frames else 0
        return tuple(path for _, _, path in frames), pid, camid
