"""Image transforms of the data loaders: the step registry, its built-in steps and ``build_transforms``."""
from . import steps
from .build import TRANSFORM_REGISTRY, build_transforms
from .transforms import RandomPatch, ToTensor255

__all__ = ["TRANSFORM_REGISTRY", "RandomPatch", "ToTensor255", "build_transforms", "steps"]
