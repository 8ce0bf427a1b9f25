"""iLIDS-VID (Wang et al., ECCV 2014): 300 ids, one tracklet in each of 2 cameras, 10 official splits.

Layout under ``root/ilids-vid/`` (``iLIDS-VID.tar`` unpacked)::

    i-LIDS-VID/sequences/cam1/person001/cam1_person001_00317.png   # frames in temporal (name) order
    i-LIDS-VID/sequences/cam2/person001/...
    train-test people splits/train_test_splits_ilidsvid.mat        # ls_set: 10 x 300, 1-based indices

Protocol (Wang et al., as torchreid): row ``split_id`` of ``ls_set`` indexes the sorted person folders of
``cam1``; its first half are the test persons, the second half the training persons. Test persons' ``cam1``
tracklets are the queries and their ``cam2`` tracklets the gallery. Ids are the folder numbers
(``person001`` -> 1).

:class:`CameraPairSequences` is the shared base of the two-camera sets (iLIDS-VID, PRID2011).
"""
import os
import re
from typing import List, Sequence, Tuple

import numpy as np

from .bases import (DatasetNotFoundError, README_HINT, Record, VideoDataset, find_dataset_dir, list_images,
                    require_paths)
from .build import DATASET_REGISTRY

Split = Tuple[List[str], List[str]]
"""``(train person folder names, test person folder names)``."""


class CameraPairSequences(VideoDataset):
    """Two cameras of per-person frame folders and fixed person splits; subclasses give the folders and splits.

    Train records hold both cameras' tracklets of the training persons; query records the first camera's and
    gallery records the second camera's tracklets of the test persons.

    Args:
        root: datasets root holding one of :attr:`dataset_dirs`.
        split_id: which split of :meth:`load_splits` (0-based).
        min_seq_len: drop tracklets with fewer frames (0 = keep all).
    """

    dataset_dirs: Tuple[str, ...] = ()
    #: Path parts of the two camera folders under the dataset folder.
    camera_dirs: Tuple[Tuple[str, ...], Tuple[str, ...]] = ((), ())
    frame_exts: Tuple[str, ...] = (".png",)

    def __init__(self, root: str = "datasets", split_id: int = 0, min_seq_len: int = 0, **kwargs) -> None:
        self.data_dir = find_dataset_dir(root, self.dataset_dirs, self.dataset_name)
        self.cam_dirs = [os.path.join(self.data_dir, *parts) for parts in self.camera_dirs]
        require_paths(self.dataset_name, *self.cam_dirs)
        self.min_seq_len = min_seq_len
        splits = self.load_splits()
        if not 0 <= split_id < len(splits):
            raise ValueError(f"{self.dataset_name}: split_id {split_id} is outside the {len(splits)} splits "
                             f"(0-{len(splits) - 1}); set DATASETS.SPLIT_ID accordingly")
        train_names, test_names = splits[split_id]
        self.split_sources = {"train": self.data_dir, "query": self.cam_dirs[0], "gallery": self.cam_dirs[1]}
        train = self.tracklets(train_names, (0, 1))
        query = self.tracklets(test_names, (0,))
        gallery = self.tracklets(test_names, (1,))
        super().__init__(train, query, gallery, **kwargs)

    @classmethod
    def from_config(cls, cfg) -> dict:
        return {"split_id": cfg.DATASETS.SPLIT_ID, "min_seq_len": cfg.DATASETS.MIN_SEQ_LEN}

    def load_splits(self) -> List[Split]:
        """All splits of the dataset, each ``(train person folders, test person folders)``."""
        raise NotImplementedError

    def person_folders(self, camera: int) -> List[str]:
        """Sorted names of the person folders of camera ``camera`` (0 or 1)."""
        return sorted(n for n in os.listdir(self.cam_dirs[camera])
                      if os.path.isdir(os.path.join(self.cam_dirs[camera], n)))

    def tracklets(self, person_names: Sequence[str], cameras: Sequence[int]) -> List[Record]:
        """One record per person of ``person_names`` and camera of ``cameras``; pid = the folder's number."""
        records = []
        for name in person_names:
            digits = re.findall(r"\d+", name)
            if not digits:
                raise ValueError(f"{self.dataset_name}: cannot read a person number from the folder name '{name}'")
            for cam in cameras:
                folder = os.path.join(self.cam_dirs[cam], name)
                frames = list_images(folder, self.frame_exts) if os.path.isdir(folder) else []
                if not frames:
                    raise DatasetNotFoundError(
                        f"{self.dataset_name}: expected the frames of '{name}' in '{folder}' (named by the split) "
                        f"but found none: is the dataset fully unpacked? {README_HINT}")
                if len(frames) >= self.min_seq_len:
                    records.append((tuple(frames), int(digits[-1]), cam))
        return records


@DATASET_REGISTRY.register()
class iLIDSVID(CameraPairSequences):  # noqa: N801  (the dataset's own spelling, as torchreid)
    """iLIDS-VID video re-id set (see the module docstring for the layout and protocol)."""

    dataset_dirs = ("ilids-vid", "iLIDS-VID")
    camera_dirs = (("i-LIDS-VID", "sequences", "cam1"), ("i-LIDS-VID", "sequences", "cam2"))
    split_file = os.path.join("train-test people splits", "train_test_splits_ilidsvid.mat")

    def load_splits(self) -> List[Split]:
        from scipy.io import loadmat

        path = os.path.join(self.data_dir, self.split_file)
        require_paths(self.dataset_name, path)
        data = loadmat(path)
        if "ls_set" not in data:
            raise DatasetNotFoundError(f"iLIDSVID: {path} has no 'ls_set' array of splits. {README_HINT}")
        table = np.asarray(data["ls_set"]).astype(np.int64)
        persons = self.person_folders(0)
        if set(persons) != set(self.person_folders(1)):
            raise DatasetNotFoundError(
                f"iLIDSVID: '{self.cam_dirs[0]}' and '{self.cam_dirs[1]}' must hold the same person folders. "
                f"{README_HINT}")
        if table.ndim != 2 or table.size == 0 or table.min() < 1 or table.max() > len(persons):
            raise ValueError(f"iLIDSVID: 'ls_set' of {path} must be splits x persons of 1-based indices into the "
                             f"{len(persons)} person folders of '{self.cam_dirs[0]}'; got shape {table.shape}")
        half = table.shape[1] // 2
        return [([persons[i - 1] for i in sorted(row[half:])], [persons[i - 1] for i in sorted(row[:half])])
                for row in table.tolist()]
