"""Image transforms of the data loaders."""
from .build import build_transforms
from .transforms import RandomPatch, ToTensor255
