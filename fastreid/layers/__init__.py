"""Small reusable blocks: norms, pooling, margin classifiers, attention."""
from .any_softmax import CLASSIFIER_REGISTRY, ArcSoftmax, CircleSoftmax, CosSoftmax, Linear, build_classifier
from .attention import NonLocal, SELayer, SplAtConv2d
from .batch_norm import IBN, NORM_NAMES, GhostBatchNorm, get_norm
from .pooling import POOLING_REGISTRY, build_pooling

__all__ = [
    "CLASSIFIER_REGISTRY",
    "POOLING_REGISTRY",
    "NORM_NAMES",
    "ArcSoftmax",
    "CircleSoftmax",
    "CosSoftmax",
    "GhostBatchNorm",
    "IBN",
    "Linear",
    "NonLocal",
    "SELayer",
    "SplAtConv2d",
    "build_classifier",
    "build_pooling",
    "get_norm",
]
