"""ResNet-mid (Yu et al., "The Devil is in the Middle", arXiv:1711.08106) as torchreid's ``resnet50mid``.

The trunk is fastreid's ResNet-50 with torchvision's stem and last stride 2; the backbone returns the outputs of
layer4's three blocks concatenated along channels (all three share layer4's resolution), and
:class:`fastreid.modeling.heads.ResNetMidHead` fuses them: the pooled first two through ``fc_fusion`` (1024-d),
concatenated with the pooled last (2048-d), a 3072-d feature.
"""
import torch
from torch import nn

from .build import BACKBONE_REGISTRY
from .resnet import ResNet, build_resnet_family, parse_depth
from .zoo import register_zoo_model

__all__ = ["ResNetMid", "build_resnet_mid_backbone"]

# torchvision's ImageNet weights (torchreid initialises resnet50mid from them).
_FILES = {50: "resnet50-0676ba61.pth", 101: "resnet101-63fe2227.pth", 152: "resnet152-394f9c45.pth"}


class ResNetMid(nn.Module):
    """A bottleneck ResNet whose output is the concatenation of the last stage's block outputs.

    Args:
        resnet: the trunk; its modules are adopted under their own names (``conv1`` … ``layer4``), so torchreid's
            and torchvision's keys still match. Its last stage must have 3 blocks.

    Attributes:
        out_channels (int): 3 × the trunk's channels (6144 for ResNet-50).
    """

    def __init__(self, resnet: ResNet) -> None:
        super().__init__()
        if len(resnet.layer4) != 3:
            raise ValueError(f"ResNet-mid fuses layer4's 3 blocks; this ResNet has {len(resnet.layer4)}")
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            self.add_module(name, getattr(resnet, name))
        self.out_channels = 3 * resnet.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map B×3×H×W to B×3C×H/32×W/32: layer4's first, second and third block outputs, in that order."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        outputs = []
        for block in self.layer4:
            x = block(x)
            outputs.append(x)
        return torch.cat(outputs, 1)


@BACKBONE_REGISTRY.register()
def build_resnet_mid_backbone(cfg) -> ResNetMid:
    """ResNet-mid on a ResNet-50/101/152 trunk (MODEL.BACKBONE.DEPTH, LAST_STRIDE, NORM, WITH_IBN, WITH_SE,
    STEM_POOL, PRETRAIN); no non-local blocks."""
    depth = parse_depth(cfg.MODEL.BACKBONE.DEPTH, sorted(_FILES))
    resnet = build_resnet_family(cfg, depth, [_FILES[depth]], with_nl=False, stem_pool=cfg.MODEL.BACKBONE.STEM_POOL)
    return ResNetMid(resnet)


register_zoo_model(
    "resnet50mid",
    ("MODEL.BACKBONE.NAME", "build_resnet_mid_backbone", "MODEL.BACKBONE.DEPTH", "50x",
     "MODEL.BACKBONE.LAST_STRIDE", 2, "MODEL.BACKBONE.STEM_POOL", "padded", "MODEL.BACKBONE.FEAT_DIM", 6144,
     "MODEL.HEADS.NAME", "ResNetMidHead", "MODEL.HEADS.EMBEDDING_DIM", 1024),
)
