"""Backbones, registered in ``BACKBONE_REGISTRY`` by their builder's name."""
from .build import BACKBONE_REGISTRY, build_backbone
from .resnest import build_resnest_backbone
from .resnet import ResNet, build_resnet_backbone
from .resnext import build_resnext_backbone
from .vit import VisionTransformer, build_vit_backbone
from .zoo import ZooEntry, model_zoo, register_zoo_model, zoo_entry

# Imported for their registrations (backbone builders and zoo names).
from . import osnet  # noqa: E402,F401
from . import osnet_ain  # noqa: E402,F401
from . import pcb  # noqa: E402,F401
from . import hacnn  # noqa: E402,F401
from . import mlfn  # noqa: E402,F401
from . import mudeep  # noqa: E402,F401
from . import resnet_mid  # noqa: E402,F401
from . import timm_adapter  # noqa: E402,F401
from . import torchvision_adapter  # noqa: E402,F401
from . import shufflenet  # noqa: E402,F401
from . import lightweight  # noqa: E402,F401
from . import repvgg  # noqa: E402,F401

__all__ = [
    "BACKBONE_REGISTRY",
    "ResNet",
    "VisionTransformer",
    "build_backbone",
    "build_resnest_backbone",
    "build_resnet_backbone",
    "build_resnext_backbone",
    "build_vit_backbone",
    "ZooEntry",
    "model_zoo",
    "register_zoo_model",
    "zoo_entry",
]
