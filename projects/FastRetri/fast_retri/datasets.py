"""Fine-grained retrieval datasets in their published layouts, and a synthetic class set.

Protocol (Oh Song et al., CVPR 2016, followed by fast-reid's FastRetri): the classes are split in two halves,
the first for training and the second for test, so test classes are never seen in training; every test image
is a query against all other test images.
"""
import os
from typing import List, Sequence, Tuple

import numpy as np
from scipy.io import loadmat

from fastreid.data.datasets import DATASET_REGISTRY, ImageDataset, SyntheticPerson
from fastreid.data.datasets.bases import require_paths

__all__ = ["CUB", "Cars196", "RetrievalDataset", "SOP", "SyntheticRetrieval", "split_by_class"]

Labelled = List[Tuple[str, int]]
"""``(img_path, class_id)`` pairs."""


class RetrievalDataset(ImageDataset):
    """A retrieval dataset: train and test images with class labels.

    Train records are ``(img_path, class_id, 0)``. The test images are both ``query`` and ``gallery``, the
    i-th as ``(img_path, class_id, i)``: with each test image its own camera, the re-id protocol's removal of
    gallery images of the query's identity and camera removes exactly the query itself. So the retrieval
    protocol (each test image against all the others) holds under fastreid's re-id checks and evaluator, where
    Rank-K is Recall@K over the queries whose class has another test image; the project's trainer reads each
    test image once and reports Recall@K over all of them.

    Args:
        train, test: ``(img_path, class_id)`` pairs.
        kwargs: ``combineall`` (adds each test image once), ``verbose``.
    """

    def __init__(self, train: Labelled, test: Labelled, **kwargs) -> None:
        test_records = [(path, label, i) for i, (path, label) in enumerate(test)]
        super().__init__([(path, label, 0) for path, label in train], test_records, test_records, **kwargs)

    @property
    def test(self):
        """The test records (``query``, which is also the gallery)."""
        return self.query

    def combine_all(self) -> None:
        gallery, self.gallery = self.gallery, []  # the gallery repeats the query: add the test images once
        super().combine_all()
        self.gallery = gallery


def split_by_class(labelled: Labelled, num_train_classes: int) -> Tuple[Labelled, Labelled]:
    """``(train, test)``: the images of classes ``1..num_train_classes`` and those of the higher classes."""
    train = [(p, c) for p, c in labelled if c <= num_train_classes]
    return train, [(p, c) for p, c in labelled if c > num_train_classes]


def _read_columns(path: str, dataset: str, skip_header: bool = False) -> List[List[str]]:
    with open(path) as f:
        rows = [line.split() for line in f.read().splitlines() if line.strip()]
    rows = rows[1:] if skip_header else rows
    bad = next((i for i, row in enumerate(rows) if len(row) < 2), None)
    if bad is not None:
        raise ValueError(f"{dataset}: {path} line {bad + 1 + skip_header} has fewer than two columns")
    return rows


@DATASET_REGISTRY.register()
class CUB(RetrievalDataset):
    """CUB-200-2011 (Wah et al. 2011): 11,788 bird images of 200 species; classes 1-100 (5,864 images) train,
    101-200 (5,924 images) test. ``train_test_split.txt`` is not used: the retrieval protocol splits by class.

    Args:
        root: datasets root holding ``CUB_200_2011/``.
    """

    LAYOUT = """CUB_200_2011/
  images.txt               "<image_id> <path under images/>" per line
  image_class_labels.txt   "<image_id> <class_id 1-200>" per line
  images/                  <class folder>/<image>.jpg"""

    def __init__(self, root: str = "datasets", **kwargs) -> None:
        folder = os.path.join(root, "CUB_200_2011")
        files = [os.path.join(folder, n) for n in ("images.txt", "image_class_labels.txt", "images")]
        require_paths(self.dataset_name, *files, layout=self.LAYOUT)
        paths = {image_id: path for image_id, path, *_ in _read_columns(files[0], self.dataset_name)}
        labels = {image_id: int(c) for image_id, c, *_ in _read_columns(files[1], self.dataset_name)}
        unlabelled = sorted(set(paths) - set(labels), key=int)
        if unlabelled:
            raise ValueError(f"{self.dataset_name}: images {unlabelled[:5]} of {files[0]} have no class in {files[1]}")
        labelled = [(os.path.join(files[2], path), labels[i]) for i, path in paths.items()]
        self.data_dir = folder
        super().__init__(*split_by_class(labelled, 100), **kwargs)


def _field(records, name: str) -> list:
    """One field of a MATLAB struct array loaded with ``squeeze_me``, one Python value per record."""
    return [v.item() if isinstance(v, np.ndarray) else v for v in np.atleast_1d(records[name])]


@DATASET_REGISTRY.register()
class Cars196(RetrievalDataset):
    """Stanford Cars (Krause et al. 2013): 16,185 images of 196 car models; classes 1-98 (8,054 images) train,
    99-196 (8,131 images) test. The ``test`` flag of ``cars_annos.mat`` is not used: the protocol splits by class.

    Args:
        root: datasets root holding ``CARS196/`` (or fast-reid's ``Cars_196/``).
    """

    dataset_dirs = ("CARS196", "Cars_196")
    LAYOUT = """CARS196/
  cars_annos.mat   struct array 'annotations' with fields relative_im_path ('car_ims/000001.jpg'), class (1-196)
  car_ims/         the images"""

    def __init__(self, root: str = "datasets", **kwargs) -> None:
        folder = next((os.path.join(root, d) for d in self.dataset_dirs if os.path.isdir(os.path.join(root, d))),
                      os.path.join(root, self.dataset_dirs[0]))
        annotations = os.path.join(folder, "cars_annos.mat")
        require_paths(self.dataset_name, folder, annotations, layout=self.LAYOUT)
        records = loadmat(annotations, squeeze_me=True).get("annotations")
        if records is None or not {"relative_im_path", "class"} <= set(records.dtype.names or ()):
            raise ValueError(f"{self.dataset_name}: {annotations} has no 'annotations' struct array with "
                             f"relative_im_path and class fields. Expected:\n{self.LAYOUT}")
        labelled = [(os.path.join(folder, str(path)), int(c))
                    for path, c in zip(_field(records, "relative_im_path"), _field(records, "class"))]
        self.data_dir = folder
        super().__init__(*split_by_class(labelled, 98), **kwargs)


@DATASET_REGISTRY.register()
class SOP(RetrievalDataset):
    """Stanford Online Products (Oh Song et al. 2016): 120,053 images of 22,634 products; the published split
    of ``Ebay_train.txt`` (11,318 classes, 59,551 images) and ``Ebay_test.txt`` (11,316 classes, 60,502 images).

    Args:
        root: datasets root holding ``Stanford_Online_Products/``.
    """

    LAYOUT = """Stanford_Online_Products/
  Ebay_train.txt, Ebay_test.txt   a header line, then "<image_id> <class_id> <super_class_id> <path>" per line
  <super class>_final/            the images, at the listed paths"""

    def __init__(self, root: str = "datasets", **kwargs) -> None:
        folder = os.path.join(root, "Stanford_Online_Products")
        lists = [os.path.join(folder, f"Ebay_{split}.txt") for split in ("train", "test")]
        require_paths(self.dataset_name, folder, *lists, layout=self.LAYOUT)
        train, test = (self._labelled(folder, path) for path in lists)
        self.data_dir = folder
        super().__init__(train, test, **kwargs)

    def _labelled(self, folder: str, path: str) -> Labelled:
        rows = _read_columns(path, self.dataset_name, skip_header=True)
        if any(len(row) != 4 for row in rows):
            raise ValueError(f"{self.dataset_name}: {path} needs 4 columns per line. Expected:\n{self.LAYOUT}")
        return [(os.path.join(folder, row[3]), int(row[1])) for row in rows]


@DATASET_REGISTRY.register()
class SyntheticRetrieval(RetrievalDataset):
    """The SyntheticPerson identities (generated on first use) as retrieval classes: its training identities
    train, and every image (query and gallery) of its disjoint test identities is a retrieval test image.

    Takes the DATASETS.SYNTHETIC.* keys, as :class:`fastreid.data.datasets.SyntheticPerson`.
    """

    def __init__(self, root: str = "datasets", num_ids: int = 200, num_cameras: int = 6, images_per_id: int = 20,
                 height: int = 128, width: int = 64, seed: int = 0, **kwargs) -> None:
        person = SyntheticPerson(root, num_ids=num_ids, num_cameras=num_cameras, images_per_id=images_per_id,
                                 height=height, width=width, seed=seed, verbose=False)
        self.data_dir = person.data_dir
        super().__init__(self._labelled(person, ["train"]), self._labelled(person, ["query", "gallery"]), **kwargs)

    @classmethod
    def from_config(cls, cfg) -> dict:
        return SyntheticPerson.from_config(cfg)

    @staticmethod
    def _labelled(person: SyntheticPerson, splits: Sequence[str]) -> Labelled:
        return [(path, pid) for split in splits for path, pid, _ in person.process_dir(person.split_sources[split])]
