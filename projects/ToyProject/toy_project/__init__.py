"""ToyProject: the worked example of extending fastreid from outside the package.

Importing this package registers a backbone (``build_tiny_convnet_backbone``), a loss (``RingLoss``) and
provides a hook (``WeightNormHook``); ``add_toy_config`` adds the project's config key. See
docs/extending.md.
"""
from .backbone import TinyConvNet, build_tiny_convnet_backbone
from .config import add_toy_config
from .hooks import WeightNormHook
from .losses import RingLoss

__all__ = ["RingLoss", "TinyConvNet", "WeightNormHook", "add_toy_config", "build_tiny_convnet_backbone"]
