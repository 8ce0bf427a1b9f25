"""MARS (Zheng et al., ECCV 2016): 1261 ids, 6 cameras, 8298 train / 1980 query / 9330 gallery tracklets.

Layout under ``root/mars/`` (the two image zips unpacked, plus ``info/`` of the MARS-evaluation code)::

    bbox_train/0001/0001C1T0001F001.jpg    # <pid:4>C<cam>T<tracklet:4>F<frame:3>.jpg, in per-pid folders
    bbox_test/...                          # pid 0000 = distractors, 00-1 = junk
    info/train_name.txt  info/test_name.txt              # one frame file name a line
    info/tracks_train_info.mat  info/tracks_test_info.mat  # N x 4: start line, end line (1-based,
                                                          # inclusive, into the name list), pid, camera
    info/query_IDX.mat                                   # 1-based rows of tracks_test_info that are queries

Protocol (torchreid's): tracklets of pid -1 are junk and dropped from every subset; pid 0 (distractors) stays in
the gallery; the gallery is every test tracklet whose row is not in ``query_IDX``.
"""
import os
from typing import List, Sequence

import numpy as np

from .bases import DatasetNotFoundError, README_HINT, Record, VideoDataset, find_dataset_dir, require_paths
from .build import DATASET_REGISTRY

NUM_CAMERAS = 6


def read_mat_array(path: str, key: str) -> np.ndarray:
    """The integer array stored as ``key`` in the MATLAB v5 file ``path``.

    Raises:
        DatasetNotFoundError: when the file has no ``key`` (not the expected MARS info file).
    """
    from scipy.io import loadmat

    data = loadmat(path)
    if key not in data:
        fields = sorted(k for k in data if not k.startswith("__"))
        raise DatasetNotFoundError(f"MARS: {path} has no '{key}' array (found {fields}). {README_HINT}")
    return np.asarray(data[key]).astype(np.int64)


@DATASET_REGISTRY.register()
class MARS(VideoDataset):
    """MARS video re-id set (see the module docstring for the layout and protocol).

    Args:
        root: datasets root holding ``mars/``.
        min_seq_len: drop tracklets with fewer frames (0 = keep all).
    """

    dataset_dirs = ("mars", "MARS")
    _junk_pids = (0, -1)

    def __init__(self, root: str = "datasets", min_seq_len: int = 0, **kwargs) -> None:
        self.data_dir = find_dataset_dir(root, self.dataset_dirs, self.dataset_name)
        info = os.path.join(self.data_dir, "info")
        files = {name: os.path.join(info, name) for name in (
            "train_name.txt", "test_name.txt", "tracks_train_info.mat", "tracks_test_info.mat", "query_IDX.mat")}
        train_dir, test_dir = (os.path.join(self.data_dir, d) for d in ("bbox_train", "bbox_test"))
        require_paths(self.dataset_name, train_dir, test_dir, *files.values())
        self.min_seq_len = min_seq_len

        train_names, test_names = (self._names(files[f]) for f in ("train_name.txt", "test_name.txt"))
        tracks_train = read_mat_array(files["tracks_train_info.mat"], "track_train_info")
        tracks_test = read_mat_array(files["tracks_test_info.mat"], "track_test_info")
        query_rows = read_mat_array(files["query_IDX.mat"], "query_IDX").ravel() - 1
        if len(query_rows) and not (0 <= query_rows.min() and query_rows.max() < len(tracks_test)):
            raise ValueError(f"MARS: {files['query_IDX.mat']} indexes rows outside 1..{len(tracks_test)} of "
                             f"{files['tracks_test_info.mat']}")
        is_query = np.zeros(len(tracks_test), dtype=bool)
        is_query[query_rows] = True

        self.split_sources = {"train": train_dir, "query": test_dir, "gallery": test_dir}
        train = self._tracklets(train_names, tracks_train, train_dir)
        query = self._tracklets(test_names, tracks_test[is_query], test_dir)
        gallery = self._tracklets(test_names, tracks_test[~is_query], test_dir)
        super().__init__(train, query, gallery, **kwargs)

    @classmethod
    def from_config(cls, cfg) -> dict:
        return {"min_seq_len": cfg.DATASETS.MIN_SEQ_LEN}

    @staticmethod
    def _names(path: str) -> List[str]:
        with open(path) as f:
            return [line.strip() for line in f if line.strip()]

    def _tracklets(self, names: Sequence[str], tracks: np.ndarray, image_dir: str) -> List[Record]:
        """Records of the rows ``(start, end, pid, camera)`` of a tracks_*_info array; frames live in
        ``image_dir/<first 4 characters of the name>/``."""
        if tracks.ndim != 2 or tracks.shape[1] < 4:
            raise ValueError(f"MARS: tracks info for {image_dir} must be N x 4 (start, end, pid, camera); "
                             f"got shape {tracks.shape}")
        records, folders = [], set()
        for start, end, pid, camid in tracks[:, :4].tolist():
            if pid == -1:
                continue
            if not (1 <= camid <= NUM_CAMERAS and 1 <= start <= end <= len(names)):
                raise ValueError(f"MARS: tracklet (start {start}, end {end}, pid {pid}, camera {camid}) of "
                                 f"{image_dir} is outside cameras 1-{NUM_CAMERAS} or lines 1-{len(names)}")
            frames = names[start - 1:end]
            if len({n[:4] for n in frames}) != 1 or len({n[5] for n in frames}) != 1:
                raise ValueError(f"MARS: tracklet lines {start}-{end} of {image_dir} mix persons or cameras: "
                                 f"{frames[0]} ... {frames[-1]}")
            if len(frames) < self.min_seq_len:
                continue
            folders.add(frames[0][:4])
            records.append((tuple(os.path.join(image_dir, n[:4], n) for n in frames), pid, camid - 1))
        missing = sorted(folders - set(os.listdir(image_dir)))
        if missing:
            raise DatasetNotFoundError(
                f"MARS: expected the person folders {missing[:5]}{' ...' if len(missing) > 5 else ''} in "
                f"'{image_dir}' (named in the info files) but they do not exist: is the zip fully unpacked? "
                f"{README_HINT}")
        return records
