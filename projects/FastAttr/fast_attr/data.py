"""Attribute samples for fastreid's loaders: :class:`AttributeSet` and the train / test loader builders."""
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch.utils.data import DataLoader

from fastreid.config import CfgNode
from fastreid.data import CommDataset, build_reid_test_loader, build_reid_train_loader
from fastreid.data.build import TrainDataLoader
from fastreid.data.datasets import build_dataset
from fastreid.data.transforms import build_transforms

from .datasets import AttributeDataset, AttributeRecord, positive_ratios

__all__ = ["AttributeSet", "build_attr_test_loader", "build_attr_train_loader", "build_attribute_datasets"]


class AttributeSet(CommDataset):
    """A :class:`fastreid.data.CommDataset` whose samples' ``targets`` are (A,) float attribute vectors.

    Everything else (image reading, seeded transforms, bad-image skipping, the sample dict) is the base
    class's; ``num_classes`` is the number of attributes, which the trainer gives the head as its number of
    logits (MODEL.HEADS.NUM_CLASSES).

    Args:
        records: :data:`~fast_attr.datasets.AttributeRecord` lists; image paths must be unique.
        attribute_names: the A attribute names.
        transform, relabel, skip_bad_images: see :class:`fastreid.data.CommDataset` (``relabel`` for training
            records, whose ids are dataset-scoped strings).

    Attributes:
        positive_ratios: (A,) float32 share of records in which each attribute is present.
    """

    def __init__(self, records: Sequence[AttributeRecord], attribute_names: Sequence[str],
                 transform: Optional[Callable] = None, relabel: bool = False, skip_bad_images: bool = False) -> None:
        super().__init__(records, transform, relabel=relabel, skip_bad_images=skip_bad_images)
        self.attribute_names = tuple(attribute_names)
        self.num_classes = len(self.attribute_names)
        self._attributes = {}
        for path, _, _, attributes in records:
            if path in self._attributes:
                raise ValueError(f"AttributeSet: the image {path} is listed twice")
            self._attributes[path] = torch.as_tensor(attributes, dtype=torch.float32)
        self.positive_ratios = torch.as_tensor(positive_ratios(records), dtype=torch.float32)

    def __getitems__(self, indices: Sequence) -> List[dict]:
        """The base class's samples of ``indices``, with ``targets`` the (A,) attribute vectors."""
        samples = super().__getitems__(indices)
        for sample in samples:  # by path: a skipped bad image is replaced by another record
            sample["targets"] = self._attributes[sample["img_paths"]]
        return samples


def build_attribute_datasets(cfg: CfgNode, key: str, names: Sequence[str], **kwargs) -> List[AttributeDataset]:
    """Build the datasets ``names`` (listed under the config key ``key``), all attribute datasets with the same
    attributes.

    Raises:
        TypeError: a name is not an :class:`~fast_attr.datasets.AttributeDataset`.
        ValueError: the datasets have different attributes.
    """
    datasets = [build_dataset(name, cfg, **kwargs) for name in names]
    for name, dataset in zip(names, datasets):
        if not isinstance(dataset, AttributeDataset):
            raise TypeError(f"{key}: '{name}' is a {type(dataset).__name__}, not an attribute dataset; FastAttr "
                            "trains and tests on attribute datasets such as PA100K, Market1501Attr or "
                            "SyntheticPersonAttr")
        if dataset.attribute_names != datasets[0].attribute_names:
            raise ValueError(f"{key}: '{name}' has other attributes than '{names[0]}': "
                             f"{dataset.attribute_names} vs {datasets[0].attribute_names}")
    return datasets


def build_attr_train_loader(cfg: CfgNode, names: Optional[Sequence[str]] = None) -> TrainDataLoader:
    """fastreid's infinite training loader over the training records of DATASETS.NAMES (or ``names``).

    Returns:
        A :class:`fastreid.data.TrainDataLoader` whose batches hold ``targets`` B×A float attribute vectors and
        whose ``dataset`` is an :class:`AttributeSet`.
    """
    names = list(cfg.DATASETS.NAMES if names is None else names)
    datasets = build_attribute_datasets(cfg, "DATASETS.NAMES", names, combineall=cfg.DATASETS.COMBINEALL)
    train_set = AttributeSet([r for d in datasets for r in d.train], datasets[0].attribute_names,
                             build_transforms(cfg, is_train=True), relabel=True,
                             skip_bad_images=cfg.DATALOADER.SKIP_BAD_IMAGES)
    return build_reid_train_loader(cfg, train_set=train_set)


def build_attr_test_loader(cfg: CfgNode, dataset_name: str) -> Tuple[DataLoader, int]:
    """``(loader, num_images)`` over the test records of ``dataset_name``, each image once, in order."""
    dataset = build_attribute_datasets(cfg, "DATASETS.TESTS", [dataset_name], verbose=False)[0]
    test_set = AttributeSet(dataset.test, dataset.attribute_names, build_transforms(cfg, is_train=False),
                            skip_bad_images=cfg.DATALOADER.SKIP_BAD_IMAGES)
    return build_reid_test_loader(cfg, test_set=test_set, num_query=len(test_set))
