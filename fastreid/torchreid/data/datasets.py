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

__all__ = ["ImageDataset", "image_dataset_keys", "register_image_dataset", "resolve_image_dataset"]

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

_registered: Dict[str, str] = {}


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


def image_dataset_keys() -> List[str]:
    """The dataset keys :func:`resolve_image_dataset` accepts: torchreid's and those registered, sorted."""
    return sorted({**TORCHREID_IMAGE_DATASETS, **_registered})


def resolve_image_dataset(key: str) -> str:
    """fastreid's registered dataset name for a torchreid dataset key.

    A key that is not torchreid's but is a name in fastreid's dataset registry (e.g. ``'SyntheticPerson'``) is
    returned as it is.

    Raises:
        KeyError: for an unknown key, listing the known keys.
    """
    if key in _registered:
        return _registered[key]
    if key in TORCHREID_IMAGE_DATASETS:
        return TORCHREID_IMAGE_DATASETS[key]
    if key in DATASET_REGISTRY:
        return key
    raise KeyError(f"Unknown image dataset '{key}'. Known torchreid keys: {', '.join(image_dataset_keys())}; "
                   f"fastreid datasets: {', '.join(DATASET_REGISTRY.names())}. Add your own with "
                   "torchreid.data.register_image_dataset(key, cls).")


def register_image_dataset(name: str, dataset: Type[Dataset]) -> None:
    """Register ``dataset`` under the torchreid key ``name`` (and in fastreid's dataset registry).

    The class goes into :data:`fastreid.data.datasets.DATASET_REGISTRY` under its class name, with ``name`` as
    an alias, so ``ImageDataManager(sources=name)`` and ``DATASETS.NAMES (name,)`` both find it. When another
    class of the same name is registered already, a subclass named ``name`` is registered instead. Registering
    the same class again under the same key does nothing.

    Args:
        name: the key used in ``sources`` / ``targets``.
        dataset: a subclass of :class:`ImageDataset` (or of any fastreid dataset class) whose constructor takes
            ``root`` and keyword arguments.

    Raises:
        TypeError: ``dataset`` is not a fastreid dataset class.
        ValueError: ``name`` is already taken by another dataset.
    """
    if not (isinstance(dataset, type) and issubclass(dataset, Dataset)):
        raise TypeError(f"register_image_dataset('{name}', ...) needs a subclass of torchreid.data.ImageDataset, "
                        f"got {dataset!r}")
    class_name = dataset.__name__
    taken = _registered.get(name) or TORCHREID_IMAGE_DATASETS.get(name) or (name if name in DATASET_REGISTRY else None)
    if taken is not None:
        current = DATASET_REGISTRY.get(taken)
        if current is dataset or (current.__name__ == name and current.__bases__ == (dataset,)):
            _registered[name] = taken
            return
        raise ValueError(f"An image dataset named '{name}' already exists (it is {taken or name}); "
                         f"known keys: {', '.join(image_dataset_keys())}")
    if class_name in DATASET_REGISTRY and DATASET_REGISTRY.get(class_name) is not dataset:
        # Another class of the same name (two scripts' ``NewDataset``): register a subclass named by the key.
        dataset = type(name, (dataset,), {"__module__": dataset.__module__, "__doc__": dataset.__doc__})
        class_name = name
    if class_name not in DATASET_REGISTRY:
        DATASET_REGISTRY.register(dataset)
    if name != class_name:
        DATASET_REGISTRY.register_alias(name, class_name)
    _registered[name] = class_name
    logger.info("Registered image dataset '%s' as fastreid dataset %s", name, class_name)
