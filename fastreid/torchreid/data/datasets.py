"""torchreid's dataset keys on fastreid's dataset registry, and torchreid's way to add a dataset.

torchreid names datasets by lower-case keys (``'market1501'``, ``'dukemtmcreid'``, ...); each maps to the class
fastreid registers in :data:`fastreid.data.datasets.DATASET_REGISTRY`, so loading, layouts and split protocols
are fastreid's. A dataset added with :func:`register_image_dataset` is registered in that same registry (under
its class name, with the torchreid key as an alias), so fastreid configs can name it too.
"""
import logging
from typing import Any, Dict, List, Type

from fastreid.data.datasets import DATASET_REGISTRY, Dataset
from fastreid.data.datasets import ImageDataset as FastreidImageDataset

logger = logging.getLogger(__name__)

__all__ = ["DatasetKeys", "IMAGE_DATASET_KEYS", "ImageDataset", "image_dataset_keys", "register_image_dataset",
           "resolve_image_dataset"]

#: torchreid's image dataset keys -> fastreid's registered dataset names.
TORCHREID_IMAGE_DATASETS: Dict[str, str] = {
    "market1501": "Market1501",
    "cuhk03": "CUHK03",
    "dukemtmcreid": "DukeMTMC",
    "msmt17": "MSMT17",
    "viper": "VIPeR",
    "grid": "GRID",
    "cuhk01": "CUHK01",
    "ilids": "iLIDS",
    "sensereid": "SenseReID",
    "prid": "PRID",
    "cuhksysu": "CUHKSYSU",
    "university1652": "University1652",
}


class ImageDataset(FastreidImageDataset):
    """torchreid's base class of image datasets, on fastreid's :class:`fastreid.data.datasets.ImageDataset`.

    A subclass builds ``train``, ``query`` and ``gallery`` lists of ``(img_path, pid, camid)`` (0-based ids;
    query and gallery share the id scope) and calls ``super().__init__(train, query, gallery, **kwargs)``.
    fastreid scopes and relabels train ids itself, so several datasets train together without clashes.

    Args:
        train, query, gallery: ``(img_path, pid, camid[, dsetid])`` records.
        combineall: also train on query and gallery (minus :attr:`_junk_pids`).
        verbose: log the subset statistics.
        kwargs: torchreid's other arguments (``transform``, ``mode``, ``k_tfm``, ``root``): accepted and
            unused, since fastreid's loaders own transforms and splits.
    """

    def __init__(self, train: List[Any], query: List[Any], gallery: List[Any], combineall: bool = False,
                 verbose: bool = True, **kwargs: Any) -> None:
        super().__init__(list(train), list(query), list(gallery), combineall=combineall, verbose=verbose)

    @property
    def num_train_pids(self) -> int:
        """Identities of the training subset."""
        return self.parse_data(self.train)[0]

    @property
    def num_train_cams(self) -> int:
        """Cameras of the training subset."""
        return self.parse_data(self.train)[2]


class DatasetKeys:
    """torchreid's dataset keys of one kind (image or video) over fastreid's dataset registry.

    Args:
        kind: "image" or "video", for messages and the registering function's name.
        base: the fastreid dataset class every dataset of this kind subclasses.
        torchreid_keys: torchreid's own keys -> fastreid's registered names.
    """

    def __init__(self, kind: str, base: Type[Dataset], torchreid_keys: Dict[str, str]) -> None:
        self.kind = kind
        self.base = base
        self.torchreid_keys = torchreid_keys
        self.registered: Dict[str, str] = {}

    def keys(self) -> List[str]:
        """The keys :meth:`resolve` accepts: torchreid's and those registered, sorted."""
        return sorted({**self.torchreid_keys, **self.registered})

    def resolve(self, key: str) -> str:
        """fastreid's registered dataset name for a torchreid key (a fastreid dataset name passes as is).

        Raises:
            KeyError: for an unknown key, listing the known keys.
            TypeError: the dataset it names is not of this kind.
        """
        if key in self.registered:
            name = self.registered[key]
        elif key in self.torchreid_keys:
            name = self.torchreid_keys[key]
        elif key in DATASET_REGISTRY:
            name = key
        else:
            raise KeyError(f"Unknown {self.kind} dataset '{key}'. Known torchreid keys: {', '.join(self.keys())}; "
                           f"fastreid datasets: {', '.join(DATASET_REGISTRY.names())}. Add your own with "
                           f"torchreid.data.register_{self.kind}_dataset(key, cls).")
        if not issubclass(DATASET_REGISTRY.get(name), self.base):
            raise TypeError(f"Dataset '{key}' ({name}) is not a {self.kind} dataset: use the data manager of its "
                            f"kind (ImageDataManager for images, VideoDataManager for tracklets)")
        return name

    def register(self, name: str, dataset: Type[Dataset]) -> None:
        """Register ``dataset`` under the torchreid key ``name`` (and in fastreid's dataset registry).

        The class goes into :data:`fastreid.data.datasets.DATASET_REGISTRY` under its class name, with ``name``
        as an alias, so the data manager's ``sources=name`` and ``DATASETS.NAMES (name,)`` both find it. When
        another class of the same name is registered already, a subclass named ``name`` is registered instead.
        Registering the same class again under the same key does nothing.

        Raises:
            TypeError: ``dataset`` is not a fastreid dataset class of this kind.
            ValueError: ``name`` is already taken by another dataset.
        """
        if not (isinstance(dataset, type) and issubclass(dataset, self.base)):
            kind = self.kind.capitalize()
            raise TypeError(f"register_{self.kind}_dataset('{name}', ...) needs a subclass of "
                            f"torchreid.data.{kind}Dataset, got {dataset!r}")
        class_name = dataset.__name__
        taken = (self.registered.get(name) or self.torchreid_keys.get(name)
                 or (name if name in DATASET_REGISTRY else None))
        if taken is not None:
            current = DATASET_REGISTRY.get(taken)
            if current is dataset or (current.__name__ == name and current.__bases__ == (dataset,)):
                self.registered[name] = taken
                return
            raise ValueError(f"A dataset named '{name}' already exists (it is {taken}); known {self.kind} keys: "
                             f"{', '.join(self.keys())}")
        if class_name in DATASET_REGISTRY and DATASET_REGISTRY.get(class_name) is not dataset:
            # Another class of the same name (two scripts' ``NewDataset``): register a subclass named by the key.
            dataset = type(name, (dataset,), {"__module__": dataset.__module__, "__doc__": dataset.__doc__})
            class_name = name
        if class_name not in DATASET_REGISTRY:
            DATASET_REGISTRY.register(dataset)
        if name != class_name:
            DATASET_REGISTRY.register_alias(name, class_name)
        self.registered[name] = class_name
        logger.info("Registered %s dataset '%s' as fastreid dataset %s", self.kind, name, class_name)


IMAGE_DATASET_KEYS = DatasetKeys("image", Dataset, TORCHREID_IMAGE_DATASETS)


def image_dataset_keys() -> List[str]:
    """The dataset keys :func:`resolve_image_dataset` accepts: torchreid's and those registered, sorted."""
    return IMAGE_DATASET_KEYS.keys()


def resolve_image_dataset(key: str) -> str:
    """fastreid's registered dataset name for a torchreid dataset key (see :meth:`DatasetKeys.resolve`)."""
    return IMAGE_DATASET_KEYS.resolve(key)


def register_image_dataset(name: str, dataset: Type[Dataset]) -> None:
    """Register the image dataset ``dataset`` under the torchreid key ``name`` (see :meth:`DatasetKeys.register`).

    Args:
        name: the key used in ``sources`` / ``targets``.
        dataset: a subclass of :class:`ImageDataset` (or of any fastreid dataset class) whose constructor takes
            ``root`` and keyword arguments.
    """
    IMAGE_DATASET_KEYS.register(name, dataset)
