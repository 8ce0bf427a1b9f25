"""PA-100K (Liu et al., ICCV 2017): 100,000 pedestrian images with 26 binary attributes."""
import os
from typing import List, Sequence

import numpy as np
from scipy.io import loadmat

from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.data.datasets.bases import require_paths

from .bases import AttributeDataset, AttributeRecord

__all__ = ["PA100K"]

LAYOUT = """PA-100K/
  annotation.mat   train_images_name, val_images_name, test_images_name (N x 1 cells of file names),
                   train_label, val_label, test_label (N x 26, 0/1), attributes (26 x 1 cell of names)
  data/            the images named in annotation.mat"""


def _strings(cell) -> List[str]:
    """The strings of a MATLAB cell loaded with ``squeeze_me`` (a lone string when it has one entry)."""
    return [str(s) for s in np.atleast_1d(cell)]


@DATASET_REGISTRY.register()
class PA100K(AttributeDataset):
    """PA-100K in its published layout (see :data:`LAYOUT`): 80,000 train, 10,000 val and 10,000 test images.

    Training uses the train split and evaluation the test split, as fast-reid does; the validation records are
    kept in ``val``. The images carry no identities: each record's ``pid`` is its index in the file and its
    ``camid`` 0.

    Args:
        root: datasets root holding ``PA-100K/``.
        kwargs: ``combineall``, ``verbose``.
    """

    dataset_dir = "PA-100K"

    def __init__(self, root: str = "datasets", **kwargs) -> None:
        folder = os.path.join(root, self.dataset_dir)
        annotation, images = os.path.join(folder, "annotation.mat"), os.path.join(folder, "data")
        require_paths(self.dataset_name, folder, annotation, images, layout=LAYOUT)
        mat = loadmat(annotation, squeeze_me=True)
        missing = [k for s in ("train", "val", "test") for k in (f"{s}_images_name", f"{s}_label")
                   if k not in mat] + ([] if "attributes" in mat else ["attributes"])
        if missing:
            raise ValueError(f"{self.dataset_name}: {annotation} lacks the fields {missing}. Expected:\n{LAYOUT}")
        names = _strings(mat["attributes"])
        splits, offset = {}, 0
        for split in ("train", "val", "test"):
            splits[split] = self._records(images, _strings(mat[f"{split}_images_name"]), mat[f"{split}_label"],
                                          names, offset)
            offset += len(splits[split])
        self.data_dir = folder
        self.split_sources = {"train": annotation, "query": annotation}
        super().__init__(splits["train"], splits["test"], names, **kwargs)
        self.val = self._checked(splits["val"])

    def _records(self, images: str, files: Sequence[str], labels, names: Sequence[str],
                 offset: int) -> List[AttributeRecord]:
        labels = np.asarray(labels).reshape(len(files), -1) if len(files) else np.zeros((0, len(names)))
        if labels.shape[1] != len(names):
            raise ValueError(f"{self.dataset_name}: {labels.shape[1]} labels per image for {len(names)} attributes")
        return [(os.path.join(images, f), offset + i, 0, labels[i]) for i, f in enumerate(files)]
