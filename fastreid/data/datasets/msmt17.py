"""MSMT17 (Wei et al., CVPR 2018): 4101 ids, 15 cameras; v1 and v2 (masked faces) releases.

List files ``list_{train,val,query,gallery}.txt`` hold lines ``<pid folder>/<name>.jpg <pid>``; the camera is
the third ``_`` field of the name (``0000_000_01_0303morning_0015_0.jpg`` is camera 1). As in fast-reid,
train and val together form the training set.
"""
import os
from typing import List

from .bases import ImageDataset, Record, find_dataset_dir, require_paths
from .build import DATASET_REGISTRY

# Release folder -> (train image folder, test image folder).
_VERSIONS = {"MSMT17_V2": ("mask_train_v2", "mask_test_v2"), "MSMT17_V1": ("train", "test")}


@DATASET_REGISTRY.register()
class MSMT17(ImageDataset):
    """MSMT17; uses ``MSMT17_V2/`` if present, else ``MSMT17_V1/`` (also accepted under ``MSMT17/``)."""

    def __init__(self, root: str = "datasets", **kwargs) -> None:
        candidates = [v for v in _VERSIONS] + [f"MSMT17/{v}" for v in _VERSIONS]
        data_dir = find_dataset_dir(root, candidates, self.dataset_name)
        train_dir, test_dir = (os.path.join(data_dir, d) for d in _VERSIONS[os.path.basename(data_dir)])
        lists = {k: os.path.join(data_dir, f"list_{k}.txt") for k in ("train", "val", "query", "gallery")}
        require_paths(self.dataset_name, train_dir, test_dir, *lists.values())
        self.split_sources = {"train": f"{lists['train']} and {lists['val']}", "query": lists["query"],
                              "gallery": lists["gallery"]}
        train = self.process_list(train_dir, lists["train"]) + self.process_list(train_dir, lists["val"])
        query = self.process_list(test_dir, lists["query"])
        gallery = self.process_list(test_dir, lists["gallery"])
        super().__init__(train, query, gallery, **kwargs)

    def process_list(self, image_dir: str, list_path: str) -> List[Record]:
        records = []
        with open(list_path) as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rel, pid = line.split()
                    camid = int(os.path.basename(rel).split("_")[2]) - 1
                except (ValueError, IndexError) as e:
                    raise ValueError(f"{list_path}:{line_no}: expected '<path> <pid>' with a MSMT17 name") from e
                records.append((os.path.join(image_dir, rel), int(pid), camid))
        return records
