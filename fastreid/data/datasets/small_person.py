"""Small person re-id sets: CUHK01, VIPeR, GRID, iLIDS, PRID (single-shot), SenseReID and CUHK-SYSU crops.

CUHK01, VIPeR, iLIDS and PRID have no fixed train/test split: ``split_id`` seeds a random half/half
identity split (the protocol of torchreid), the same on every machine. GRID uses its official partitions
when their file is present (else the same random split). Query images come from the first camera of a test
id (GRID: its probe folder) and gallery images from the other; GRID's and PRID's gallery-only identities
(GRID's pid 0 distractors, PRID's cam_b ids above 200) stay in the gallery and, like junk ids, out of the
training set that ``combineall`` builds (as torchreid documents). SenseReID is test-only and CUHK-SYSU
train-only.
"""
import logging
import os
import re
from collections import defaultdict
from typing import Dict, List, Sequence, Set, Tuple

import numpy as np

from .bases import ImageDataset, Record, find_dataset_dir, list_images, require_paths
from .build import DATASET_REGISTRY

logger = logging.getLogger(__name__)


def split_ids(pids: Sequence[int], split_id: int, num_train: int = -1) -> Tuple[Set[int], Set[int]]:
    """Random identity split seeded by ``split_id``: ``(train ids, test ids)``; ``num_train`` -1 = half."""
    unique = sorted(set(pids))
    num_train = len(unique) // 2 if num_train < 0 else num_train
    order = np.random.default_rng(split_id).permutation(unique).tolist()
    return set(order[:num_train]), set(order[num_train:])


class SplitDataset(ImageDataset):
    """Base of sets with a random split: subclasses return all records from :meth:`load`.

    The ids of the gallery-only records that :meth:`load` returns are junk for ``combineall``: they stay out of
    the training set.
    """

    dataset_dirs: Tuple[str, ...] = ()

    def __init__(self, root: str = "datasets", split_id: int = 0, **kwargs) -> None:
        self.data_dir = find_dataset_dir(root, self.dataset_dirs, self.dataset_name)
        records, gallery_only = self.load()
        train_ids, test_ids = self.split([r[1] for r in records], split_id)
        train = [r for r in records if r[1] in train_ids]
        query = [r for r in records if r[1] in test_ids and self.is_query(r)]
        gallery = [r for r in records if r[1] in test_ids and not self.is_query(r)] + gallery_only
        # Gallery-only ids are distractors, not identities to learn: combineall leaves them out like junk ids.
        self._junk_pids = (*type(self)._junk_pids, *sorted({r[1] for r in gallery_only}))
        super().__init__(train, query, gallery, **kwargs)

    @classmethod
    def from_config(cls, cfg) -> dict:
        return {"split_id": cfg.DATASETS.SPLIT_ID}

    def load(self) -> Tuple[List[Record], List[Record]]:
        """``(records of split identities, gallery-only records)``; see :meth:`is_query`."""
        raise NotImplementedError

    def split(self, pids: Sequence[int], split_id: int) -> Tuple[Set[int], Set[int]]:
        """``(train ids, test ids)`` of split ``split_id``; a seeded random half/half split by default."""
        return split_ids(pids, split_id)

    def is_query(self, record: Record) -> bool:
        """Whether a test record is a query (by default: taken by camera 0) rather than a gallery item."""
        return record[2] == 0

    def _dir(self, *parts: str) -> str:
        path = os.path.join(self.data_dir, *parts)
        require_paths(self.dataset_name, path)
        return path


@DATASET_REGISTRY.register()
class CUHK01(SplitDataset):
    """CUHK01: 971 ids, 2 cameras; ``campus/NNNNMMM.png`` where images 1-2 of an id are camera A, 3-4 B."""

    dataset_dirs = ("cuhk01",)

    def load(self):
        records = []
        for path in list_images(self._dir("campus")):
            name = os.path.basename(path)
            records.append((path, int(name[:4]), (int(name[4:7]) - 1) // 2))
        return records, []


@DATASET_REGISTRY.register()
class VIPeR(SplitDataset):
    """VIPeR: 632 ids, one image in each of ``VIPeR/cam_a`` and ``VIPeR/cam_b``, paired by sorted order."""

    dataset_dirs = ("viper",)

    def load(self):
        cam_a, cam_b = list_images(self._dir("VIPeR", "cam_a")), list_images(self._dir("VIPeR", "cam_b"))
        if len(cam_a) != len(cam_b):
            raise ValueError(f"VIPeR: cam_a has {len(cam_a)} images but cam_b {len(cam_b)}; they must pair up")
        return [(p, pid, cam) for cam, paths in enumerate((cam_a, cam_b)) for pid, p in enumerate(paths)], []


@DATASET_REGISTRY.register()
class GRID(SplitDataset):
    """GRID: ``underground_reid/{probe,gallery}/<pid>_<cam>_....jpeg``; 250 paired ids, pid 0 = distractor.

    Cameras are the 8 of the file names. With ``underground_reid/features_and_partitions.mat`` (in the
    official zip) the split is the official one: its ``trainIdxAll`` holds 10 partitions of 125 training ids,
    chosen by ``split_id``; without it, a seeded random half/half split. Probe images of test ids are the
    queries; gallery images of test ids and the distractors are the gallery.
    """

    dataset_dirs = ("grid",)
    _junk_pids = (0,)
    partitions_file = os.path.join("underground_reid", "features_and_partitions.mat")

    def load(self):
        records, distractors = [], []
        self._probe_paths = set(list_images(self._dir("underground_reid", "probe")))
        for path in sorted(self._probe_paths) + list_images(self._dir("underground_reid", "gallery")):
            pid, cam = (int(field) for field in os.path.basename(path).split("_")[:2])
            (distractors if pid == 0 else records).append((path, pid, cam - 1))
        return records, distractors

    def split(self, pids, split_id):
        path = os.path.join(self.data_dir, self.partitions_file)
        if not os.path.isfile(path):
            logger.info("GRID: no %s; using a random split seeded by split_id %d", path, split_id)
            return super().split(pids, split_id)
        train_ids = official_grid_partition(path, split_id)
        return train_ids, set(pids) - train_ids

    def is_query(self, record):
        return record[0] in self._probe_paths


def official_grid_partition(path: str, split_id: int) -> Set[int]:
    """Training ids of GRID's official partition ``split_id`` (of 10) from ``features_and_partitions.mat``.

    ``trainIdxAll`` is a 1×10 cell of structs whose third field lists the partition's training ids.
    """
    from scipy.io import loadmat

    partitions = loadmat(path)["trainIdxAll"].ravel()
    if not 0 <= split_id < len(partitions):
        raise ValueError(f"GRID: split_id {split_id} is outside the {len(partitions)} partitions of {path}")
    record = partitions[split_id].ravel()[0]
    return {int(i) for i in np.asarray(record[2]).ravel()}


@DATASET_REGISTRY.register()
class iLIDS(SplitDataset):  # noqa: N801  (the dataset's own spelling)
    """QMUL i-LIDS: ``i-LIDS_Pedestrian/Persons/NNNNMMM.jpg``, 119 ids; an id's first image is the query."""

    dataset_dirs = ("ilids",)

    def load(self):
        by_pid: Dict[int, List[str]] = defaultdict(list)
        for path in list_images(self._dir("i-LIDS_Pedestrian", "Persons")):
            by_pid[int(os.path.basename(path)[:4])].append(path)
        return [(p, pid, int(i > 0)) for pid, paths in by_pid.items() for i, p in enumerate(paths)], []


@DATASET_REGISTRY.register()
class PRID(SplitDataset):
    """PRID 2011 single-shot: ``prid_2011/single_shot/cam_{a,b}/person_NNNN.png``; ids 1-200 appear in both."""

    dataset_dirs = ("prid2011",)
    num_paired = 200

    def load(self):
        records, gallery_only = [], []
        for cam, sub in enumerate(("cam_a", "cam_b")):
            for path in list_images(self._dir("prid_2011", "single_shot", sub)):
                pid = int(re.findall(r"\d+", os.path.basename(path))[0])
                if pid <= self.num_paired:
                    records.append((path, pid, cam))
                elif cam == 1:
                    gallery_only.append((path, pid, cam))
        return records, gallery_only


@DATASET_REGISTRY.register()
class SenseReID(ImageDataset):
    """SenseReID (test only): ``SenseReID/{test_probe,test_gallery}/<pid>_<cam>.jpg``."""

    def __init__(self, root: str = "datasets", **kwargs) -> None:
        data_dir = find_dataset_dir(root, ("sensereid",), self.dataset_name)
        dirs = [os.path.join(data_dir, "SenseReID", d) for d in ("test_probe", "test_gallery")]
        require_paths(self.dataset_name, *dirs)
        self.split_sources = {"train": data_dir, "query": dirs[0], "gallery": dirs[1]}
        query, gallery = (self._parse(d) for d in dirs)
        gallery_ids = {r[1] for r in gallery}
        super().__init__([], [r for r in query if r[1] in gallery_ids], gallery, **kwargs)

    @staticmethod
    def _parse(folder: str) -> List[Record]:
        return [(p, *(int(v) for v in os.path.splitext(os.path.basename(p))[0].split("_")[:2])) for p in
                list_images(folder)]


@DATASET_REGISTRY.register()
class CUHKSYSU(ImageDataset):
    """CUHK-SYSU person crops (train only): ``cropped_images/p<pid>_s<scene>.jpg``, one camera."""

    def __init__(self, root: str = "datasets", **kwargs) -> None:
        data_dir = find_dataset_dir(root, ("CUHK-SYSU", "cuhksysu"), self.dataset_name)
        folder = os.path.join(data_dir, "cropped_images")
        require_paths(self.dataset_name, folder)
        self.split_sources = {"train": folder, "query": data_dir, "gallery": data_dir}
        train = []
        for path in list_images(folder):
            match = re.match(r"p(\d+)_s(\d+)", os.path.basename(path))
            if match is None:
                raise ValueError(f"CUHKSYSU: cannot parse 'p<pid>_s<scene>' from {path}")
            train.append((path, int(match.group(1)), 0))
        super().__init__(train, [], [], **kwargs)
