"""A dataset. CHANGE: parse your own folder or list file into (image_path, person_id, camera_id) records."""
import os
import re
from typing import List

from fastreid.data.datasets import DATASET_REGISTRY, ImageDataset
from fastreid.data.datasets.bases import list_images, require_paths

__all__ = ["TemplateDataset"]

# "<pid>_c<cam>..." file names, as in Market-1501 (and the generated SyntheticPerson set).
_NAME = re.compile(r"(\d+)_c(\d+)")


@DATASET_REGISTRY.register()  # the class name is what DATASETS.NAMES / DATASETS.TESTS list
class TemplateDataset(ImageDataset):
    """Images named ``<pid>_c<cam>_*.jpg`` in ``<root>/<DATASETS.TEMPLATE.DIR>/{bounding_box_train, query,
    bounding_box_test}``.

    Args:
        root: datasets root (DATASETS.ROOT); the trainer passes it.
        folder: the dataset folder under ``root``.
        kwargs: ``combineall`` and ``verbose``, for the base class.
    """

    def __init__(self, root: str = "datasets", folder: str = "my_dataset", **kwargs) -> None:
        dirs = [os.path.join(root, folder, sub) for sub in ("bounding_box_train", "query", "bounding_box_test")]
        require_paths(self.dataset_name, *dirs)  # a missing folder is an error naming it
        train, query, gallery = (self._records(d) for d in dirs)
        super().__init__(train, query, gallery, **kwargs)

    @classmethod
    def from_config(cls, cfg) -> dict:
        """Constructor arguments from the config (other than ``root``, which the builder adds)."""
        return {"folder": cfg.DATASETS.TEMPLATE.DIR}

    def _records(self, folder: str) -> List:
        records = []
        for path in list_images(folder):
            match = _NAME.match(os.path.basename(path))
            if match is None:
                raise ValueError(f"{self.dataset_name}: cannot read '<pid>_c<cam>' from the file name {path}")
            records.append((path, int(match.group(1)), int(match.group(2)) - 1))  # cameras count from 0
        return records
