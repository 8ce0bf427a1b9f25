"""Small reusable blocks: norms, pooling, margin classifiers, attention."""
from .any_softmax import CLASSIFIER_REGISTRY, ArcSoftmax, CircleSoftmax, CosSoftmax, Linear, build_classifier
from .attention import NonLocal, SELayer, SplAtConv2d
from .batch_norm import IBN, NORM_NAMES, NORM_REGISTRY, GhostBatchNorm, InstanceNorm2d, get_norm
from .drop_path import DropPath, drop_path
from .memory_format import memory_format_of
from .pooling import POOLING_REGISTRY, build_pooling

__all__ = [
    "CLASSIFIER_REGISTRY",
    "NORM_REGISTRY",
    "POOLING_REGISTRY",
    "NORM_NAMES",
    "ArcSoftmax",
    "CircleSoftmax",
    "CosSoftmax",
    "DropPath",
    "GhostBatchNorm",
    "IBN",
    "InstanceNorm2d",
    "Linear",
    "NonLocal",
    "SELayer",
    "SplAtConv2d",
    "build_classifier",
    "build_pooling",
    "drop_path",
    "get_norm",
    "memory_format_of",
]
