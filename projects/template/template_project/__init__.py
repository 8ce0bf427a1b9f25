"""The project template: importing this package registers its components in fastreid's registries.

CHANGE: rename the package (and its imports in train_net.py and tests/) after your project.
"""
from .config import add_template_config
from .data import TemplateDataset
from .hooks import ElapsedTimeHook
from .modeling import FeatureNormLoss, build_template_backbone

__all__ = ["ElapsedTimeHook", "FeatureNormLoss", "TemplateDataset", "add_template_config",
           "build_template_backbone"]
