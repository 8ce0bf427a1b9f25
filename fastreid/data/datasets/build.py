"""The dataset registry and its builder."""
import os
from typing import Any, Optional

from fastreid.config import CfgNode
from fastreid.utils.registry import Registry

from .bases import Dataset

DATASET_REGISTRY = Registry("DATASET")
DATASET_REGISTRY.__doc__ = """Re-id dataset classes by name (the class name, as written in DATASETS.NAMES / TESTS).

A registered class subclasses :class:`fastreid.data.datasets.Dataset`, takes ``root`` as its first argument,
and may define ``from_config(cls, cfg) -> dict`` giving its other constructor keyword arguments.
Register your own from outside the package::

    from fastreid.data.datasets import DATASET_REGISTRY, ImageDataset

    @DATASET_REGISTRY.register()
    class MyReID(ImageDataset):
        def __init__(self, root="datasets", **kwargs):
            super().__init__(train, query, gallery, **kwargs)
"""

ENV_ROOT = "FASTREID_DATASETS"


def resolve_root(root: str = "") -> str:
    """The datasets root folder: ``root`` if given, else ``$FASTREID_DATASETS``, else ``"datasets"``."""
    return root or os.environ.get(ENV_ROOT, "") or "datasets"


def build_dataset(name: str, cfg: Optional[CfgNode] = None, **kwargs: Any) -> Dataset:
    """Instantiate the dataset registered as ``name``.

    Args:
        name: registered dataset name (e.g. ``"Market1501"``).
        cfg: config giving ``root`` (DATASETS.ROOT) and the class's ``from_config`` keyword arguments.
        kwargs: explicit constructor arguments; they override the config.

    Returns:
        The dataset instance.
    """
    cls = DATASET_REGISTRY.get(name)
    params = {}
    if cfg is not None:
        params["root"] = resolve_root(cfg.DATASETS.ROOT)
        params.update(cls.from_config(cfg))
    params.update(kwargs)
    params.setdefault("root", resolve_root())
    dataset = cls(**params)
    if not isinstance(dataset, Dataset):
        raise TypeError(f"DATASET_REGISTRY entry '{name}' built a {type(dataset).__name__}, not a Dataset")
    return dataset
