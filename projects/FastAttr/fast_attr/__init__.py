"""FastAttr: pedestrian attribute recognition on fastreid (after fast-reid's projects/FastAttr).

Importing this package registers the attribute datasets (``PA100K``, ``Market1501Attr``, ``SyntheticPersonAttr``)
in DATASET_REGISTRY, the ``AttrBaseline`` meta-architecture, the ``AttrHead`` head and the
``BinaryCrossEntropyLoss`` loss; ``add_attr_config`` adds the project's keys and ``AttrTrainer`` trains and
evaluates with them.
"""
from .config import add_attr_config
from .data import AttributeSet, build_attr_test_loader, build_attr_train_loader, build_attribute_datasets
from .datasets import (ATTRIBUTE_NAMES, AttributeDataset, Market1501Attr, PA100K, SyntheticPersonAttr,
                       identity_attributes)
from .evaluation import AttrEvaluator, attribute_metrics, per_attribute_accuracy
from .head import AttrHead
from .loss import BinaryCrossEntropyLoss
from .meta_arch import AttrBaseline
from .trainer import AttrTrainer

__all__ = [
    "ATTRIBUTE_NAMES",
    "AttrBaseline",
    "AttrEvaluator",
    "AttrHead",
    "AttrTrainer",
    "AttributeDataset",
    "AttributeSet",
    "BinaryCrossEntropyLoss",
    "Market1501Attr",
    "PA100K",
    "SyntheticPersonAttr",
    "add_attr_config",
    "attribute_metrics",
    "build_attr_test_loader",
    "build_attr_train_loader",
    "build_attribute_datasets",
    "identity_attributes",
    "per_attribute_accuracy",
]
