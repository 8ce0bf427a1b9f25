"""University-1652 (Zheng et al., ACM MM 2020): drone / satellite / street views of 1652 buildings."""
import os
from typing import List, Sequence

from .bases import ImageDataset, Record, find_dataset_dir, list_images, require_paths
from .build import DATASET_REGISTRY

VIEWS = ("satellite", "drone", "street")


@DATASET_REGISTRY.register()
class University1652(ImageDataset):
    """``University-Release/train/<view>/<building id>/*`` for training (camera = view index in
    satellite, drone, street); test queries from ``test/query_drone`` and gallery ``test/gallery_satellite``."""

    def __init__(self, root: str = "datasets", **kwargs) -> None:
        data_dir = find_dataset_dir(root, ("University-Release", "University-1652/University-Release"),
                                    self.dataset_name)
        train_dirs = [os.path.join(data_dir, "train", v) for v in VIEWS]
        query_dir = os.path.join(data_dir, "test", "query_drone")
        gallery_dir = os.path.join(data_dir, "test", "gallery_satellite")
        require_paths(self.dataset_name, *train_dirs[:2], query_dir, gallery_dir)
        self.split_sources = {"train": os.path.join(data_dir, "train"), "query": query_dir, "gallery": gallery_dir}
        train = [r for cam, d in enumerate(train_dirs) if os.path.isdir(d) for r in self._parse(d, cam)]
        super().__init__(train, self._parse(query_dir, 1), self._parse(gallery_dir, 0), **kwargs)

    @staticmethod
    def _parse(folder: str, camid: int) -> List[Record]:
        ids: Sequence[str] = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
        return [(p, int(pid), camid) for pid in ids for p in list_images(os.path.join(folder, pid))]
