"""Pedestrian attribute datasets, registered in fastreid's DATASET_REGISTRY."""
from .bases import AttributeDataset, AttributeRecord, positive_ratios
from .market1501_attr import Market1501Attr
from .pa100k import PA100K
from .synthetic_attr import ATTRIBUTE_NAMES, CLOTH_COLOURS, SyntheticPersonAttr, identity_attributes

__all__ = ["ATTRIBUTE_NAMES", "CLOTH_COLOURS", "AttributeDataset", "AttributeRecord", "Market1501Attr", "PA100K",
           "SyntheticPersonAttr", "identity_attributes", "positive_ratios"]
