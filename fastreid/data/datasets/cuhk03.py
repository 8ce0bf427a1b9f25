"""CUHK03 (Li et al., CVPR 2014): 1467 ids, 5 camera pairs, labeled and detected boxes.

Under ``root/cuhk03/`` either the official release unpacked (``cuhk03_release/cuhk-03.mat``, from
``cuhk03_release.zip``; the images and the classic splits below are then written on first use, which needs
h5py: see :mod:`fastreid.data.datasets.cuhk03_release`), or the images already extracted from it into
``images_labeled/`` and ``images_detected/`` named ``<campair>_<pid:03d>_<view>_<img:02d>.png`` (view 1 =
first camera of the pair, 2 = second). Splits come from

* ``cuhk03_new_protocol_config_{labeled,detected}.mat`` (new 767/700 protocol, Zhong et al. 2017), or
* torchreid's split files ``splits_{new,classic}_{labeled,detected}.json`` (the classic protocol's 20
  splits of 1367/100 ids come from ``cuhk-03.mat``'s ``testsets``; fastreid and torchreid write them on
  first use).
"""
import json
import os
from typing import List

from .bases import DatasetNotFoundError, ImageDataset, README_HINT, Record, find_dataset_dir
from .build import DATASET_REGISTRY
from .cuhk03_release import RELEASE_MAT, prepare_cuhk03


@DATASET_REGISTRY.register()
class CUHK03(ImageDataset):
    """CUHK03.

    Args:
        root: datasets root holding ``cuhk03/``.
        split_id: which split (0-19 for the classic protocol, 0 for the new one).
        cuhk03_labeled: labeled (True) or detected (False) boxes.
        cuhk03_classic_split: classic 20-split protocol instead of the new protocol.
    """

    def __init__(self, root: str = "datasets", split_id: int = 0, cuhk03_labeled: bool = False,
                 cuhk03_classic_split: bool = False, **kwargs) -> None:
        self.data_dir = find_dataset_dir(root, ("cuhk03",), self.dataset_name)
        prepare_cuhk03(self.data_dir)
        kind = "labeled" if cuhk03_labeled else "detected"
        self.image_dir = os.path.join(self.data_dir, f"images_{kind}")
        release = os.path.join(self.data_dir, RELEASE_MAT)
        if not os.path.isdir(self.image_dir):
            raise DatasetNotFoundError(
                f"CUHK03: expected the extracted images '{self.image_dir}', or the official release "
                f"'{release}' (cuhk03_release.zip unpacked; images and classic splits are extracted from it on "
                f"first use). {README_HINT}")
        split_json = os.path.join(self.data_dir, f"splits_{'classic' if cuhk03_classic_split else 'new'}_{kind}.json")
        mat = os.path.join(self.data_dir, f"cuhk03_new_protocol_config_{kind}.mat")
        if os.path.exists(split_json):
            with open(split_json) as f:
                splits = json.load(f)
            if not 0 <= split_id < len(splits):
                raise ValueError(f"CUHK03: split_id {split_id} is outside the {len(splits)} splits of {split_json}")
            split = splits[split_id]
            train, query, gallery = (self._rerooted(split[k]) for k in ("train", "query", "gallery"))
        elif not cuhk03_classic_split and os.path.exists(mat):
            if split_id != 0:
                raise ValueError("CUHK03: the new protocol has one split; use split_id 0")
            train, query, gallery = self._new_protocol(mat)
        else:
            wanted = f"{split_json} (written from {release})" if cuhk03_classic_split else f"{mat} or {split_json}"
            raise DatasetNotFoundError(f"CUHK03: expected {wanted}. {README_HINT}")
        super().__init__(train, query, gallery, **kwargs)

    @classmethod
    def from_config(cls, cfg) -> dict:
        c = cfg.DATASETS.CUHK03
        return {"split_id": c.SPLIT_ID, "cuhk03_labeled": c.LABELED, "cuhk03_classic_split": c.CLASSIC_SPLIT}

    def _rerooted(self, records) -> List[Record]:
        # Split files store absolute paths of the machine that wrote them; keep only the file name.
        return [(os.path.join(self.image_dir, os.path.basename(p)), int(pid), int(cam)) for p, pid, cam in records]

    def _new_protocol(self, mat_path: str):
        from scipy.io import loadmat

        cfg = loadmat(mat_path)
        names = [str(n[0][0]) if hasattr(n[0], "__len__") else str(n[0]) for n in cfg["filelist"]]
        labels = cfg["labels"].flatten().astype(int)
        cams = cfg["camId"].flatten().astype(int) - 1

        def subset(key):
            return [(os.path.join(self.image_dir, names[i - 1]), int(labels[i - 1]), int(cams[i - 1]))
                    for i in cfg[key].flatten()]

        return subset("train_idx"), subset("query_idx"), subset("gallery_idx")
