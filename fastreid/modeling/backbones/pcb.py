"""PCB's trunk and torchreid's ``pcb_p6`` / ``pcb_p4``.

PCB (Sun et al., ECCV 2018) is a ResNet-50 with last stride 1 (a 16×8 map at 256×128) and a part head
(:class:`fastreid.modeling.heads.PCBHead`). The trunk is fastreid's ResNet with torchvision's stem, so its module
names (``conv1`` … ``layer4``) are torchreid's and torchvision's ImageNet weights load by name.
"""
import logging

from torch import nn

from .build import BACKBONE_REGISTRY
from .resnet import build_resnet_backbone
from .zoo import register_zoo_model

__all__ = ["build_pcb_backbone"]

logger = logging.getLogger(__name__)


@BACKBONE_REGISTRY.register()
def build_pcb_backbone(cfg) -> nn.Module:
    """The ResNet of MODEL.BACKBONE.DEPTH (with its IBN/SE/NORM/PRETRAIN options) at last stride 1, as PCB
    needs; a LAST_STRIDE other than 1 is overridden with a warning."""
    if cfg.MODEL.BACKBONE.LAST_STRIDE != 1:
        logger.warning("PCB uses last stride 1; ignoring MODEL.BACKBONE.LAST_STRIDE %s", cfg.MODEL.BACKBONE.LAST_STRIDE)
        cfg = cfg.clone()
        cfg.defrost()
        cfg.MODEL.BACKBONE.LAST_STRIDE = 1
    return build_resnet_backbone(cfg)


def pcb_options(num_parts: int) -> tuple:
    """Zoo options of torchreid's ``pcb_p<num_parts>``: ResNet-50 trunk, torchvision's stem, 256-d stripes."""
    return ("MODEL.BACKBONE.NAME", "build_pcb_backbone", "MODEL.BACKBONE.DEPTH", "50x",
            "MODEL.BACKBONE.LAST_STRIDE", 1, "MODEL.BACKBONE.STEM_POOL", "padded", "MODEL.BACKBONE.FEAT_DIM", 2048,
            "MODEL.HEADS.NAME", "PCBHead", "MODEL.HEADS.NUM_PARTS", num_parts, "MODEL.HEADS.EMBEDDING_DIM", 256)


register_zoo_model("pcb_p6", pcb_options(6))
register_zoo_model("pcb_p4", pcb_options(4))
