"""Vehicle re-id sets: VeRi-776, VehicleID and VeRi-Wild, with their small / medium / large test sizes."""
import os
import re
from typing import Dict, List, Tuple

import numpy as np

from .bases import ImageDataset, Record, find_dataset_dir, list_images, require_paths
from .build import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class VeRi(ImageDataset):
    """VeRi-776: ``veri/image_{train,query,test}/<vid>_c<cam:03d>_<frame>_0.jpg``; 776 vehicles, 20 cameras."""

    def __init__(self, root: str = "datasets", **kwargs) -> None:
        data_dir = find_dataset_dir(root, ("veri", "VeRi"), self.dataset_name)
        dirs = [os.path.join(data_dir, d) for d in ("image_train", "image_query", "image_test")]
        require_paths(self.dataset_name, *dirs)
        self.split_sources = dict(zip(("train", "query", "gallery"), dirs))
        super().__init__(*(self._parse(d) for d in dirs), **kwargs)

    def _parse(self, folder: str) -> List[Record]:
        records = []
        for path in list_images(folder):
            match = re.match(r"([-\d]+)_c(\d+)", os.path.basename(path))
            if match is None:
                raise ValueError(f"VeRi: cannot parse '<vid>_c<cam>' from {path}")
            pid, camid = int(match.group(1)), int(match.group(2))
            if pid == -1:
                continue
            records.append((path, pid, camid - 1))
        return records


def _read_pairs(path: str) -> List[Tuple[str, str]]:
    with open(path) as f:
        return [tuple(line.split()[:2]) for line in f if line.strip()]


@DATASET_REGISTRY.register()
class VehicleID(ImageDataset):
    """VehicleID: ``vehicleid/image/<img>.jpg`` and ``train_test_split/{train_list,test_list_<size>}.txt``.

    Test protocol: one image per vehicle (chosen with a fixed seed) forms the gallery, the rest are queries.
    Every test image gets its own camera id, so no gallery match is filtered as "same camera".

    Args:
        test_size: 800 (small), 1600 (medium), 2400 (large) or 13164 vehicles.
    """

    default_test_size = 800

    def __init__(self, root: str = "datasets", test_size: int = 0, **kwargs) -> None:
        test_size = test_size or self.default_test_size
        data_dir = find_dataset_dir(root, ("vehicleid", "VehicleID_V1.0", "VehicleID"), self.dataset_name)
        image_dir = os.path.join(data_dir, "image")
        split_dir = os.path.join(data_dir, "train_test_split")
        train_list = os.path.join(split_dir, "train_list.txt")
        test_list = os.path.join(split_dir, f"test_list_{test_size}.txt")
        require_paths(self.dataset_name, image_dir, train_list, test_list)
        self.split_sources = {"train": train_list, "query": test_list, "gallery": test_list}
        train = [(os.path.join(image_dir, f"{img}.jpg"), int(vid), 0) for img, vid in _read_pairs(train_list)]
        test = [(os.path.join(image_dir, f"{img}.jpg"), int(vid), i) for i, (img, vid) in
                enumerate(_read_pairs(test_list))]
        query, gallery, seen = [], [], set()
        for i in np.random.default_rng(0).permutation(len(test)).tolist():
            (gallery if test[i][1] not in seen else query).append(test[i])
            seen.add(test[i][1])
        super().__init__(train, query, gallery, **kwargs)

    @classmethod
    def from_config(cls, cfg) -> dict:
        return {"test_size": cfg.DATASETS.VEHICLEID.TEST_SIZE} if cls is VehicleID else {}


@DATASET_REGISTRY.register()
class SmallVehicleID(VehicleID):
    """VehicleID with the 800-vehicle test list."""

    default_test_size = 800


@DATASET_REGISTRY.register()
class MediumVehicleID(VehicleID):
    """VehicleID with the 1600-vehicle test list."""

    default_test_size = 1600


@DATASET_REGISTRY.register()
class LargeVehicleID(VehicleID):
    """VehicleID with the 2400-vehicle test list."""

    default_test_size = 2400


@DATASET_REGISTRY.register()
class VeRiWild(ImageDataset):
    """VeRi-Wild: ``VERI-Wild/images/<vid>/<img>.jpg`` and ``train_test_split/`` lists (``<vid>/<img>`` lines):
    ``train_list.txt``, ``test_<size>_query.txt`` (query), ``test_<size>.txt`` (gallery) and
    ``vehicle_info.txt`` (``<vid>/<img>;<camera>;...`` after a header line) giving cameras.

    Args:
        test_size: 3000 (small), 5000 (medium) or 10000 (large) vehicles.
    """

    default_test_size = 3000

    def __init__(self, root: str = "datasets", test_size: int = 0, **kwargs) -> None:
        test_size = test_size or self.default_test_size
        data_dir = find_dataset_dir(root, ("VERI-Wild", "veri-wild"), self.dataset_name)
        self.image_dir = os.path.join(data_dir, "images")
        split = os.path.join(data_dir, "train_test_split")
        files = [os.path.join(split, n) for n in
                 ("train_list.txt", f"test_{test_size}_query.txt", f"test_{test_size}.txt", "vehicle_info.txt")]
        require_paths(self.dataset_name, self.image_dir, *files)
        self.split_sources = dict(zip(("train", "query", "gallery"), files))
        cameras = self._cameras(files[3])
        super().__init__(*(self._parse(f, cameras) for f in files[:3]), **kwargs)

    @classmethod
    def from_config(cls, cfg) -> dict:
        return {"test_size": cfg.DATASETS.VERIWILD.TEST_SIZE} if cls is VeRiWild else {}

    @staticmethod
    def _cameras(info_path: str) -> Dict[str, int]:
        with open(info_path) as f:
            lines = f.read().splitlines()[1:]
        fields = [line.split(";") for line in lines if line.strip()]
        return {fs[0].strip(): int(fs[1]) for fs in fields}

    def _parse(self, list_path: str, cameras: Dict[str, int]) -> List[Record]:
        records = []
        with open(list_path) as f:
            for line in f:
                key = line.strip()
                if not key:
                    continue
                if key not in cameras:
                    raise ValueError(f"VeRiWild: {key} (in {list_path}) is missing from vehicle_info.txt")
                vid = key.split("/")[0]
                records.append((os.path.join(self.image_dir, f"{key}.jpg"), int(vid), cameras[key]))
        return records


@DATASET_REGISTRY.register()
class SmallVeRiWild(VeRiWild):
    """VeRi-Wild with the 3000-vehicle test set."""

    default_test_size = 3000


@DATASET_REGISTRY.register()
class MediumVeRiWild(VeRiWild):
    """VeRi-Wild with the 5000-vehicle test set."""

    default_test_size = 5000


@DATASET_REGISTRY.register()
class LargeVeRiWild(VeRiWild):
    """VeRi-Wild with the 10000-vehicle test set."""

    default_test_size = 10000
