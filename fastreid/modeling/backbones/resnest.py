"""ResNeSt backbones (Zhang et al. 2020): ResNet-D with split-attention bottlenecks (radix 2, cardinality 1,
deep stem, average-pool downsampling), built as fast-reid builds them: padded stem max pool, stage 4 dilated
when the last stride is 1, no non-local blocks."""
import logging

from .build import BACKBONE_REGISTRY
from .resnet import ResNet, build_resnet_family, parse_depth

__all__ = ["build_resnest_backbone"]

logger = logging.getLogger(__name__)

# Deep-stem width per depth, and the ImageNet weight files of the ResNeSt release.
_STEM_WIDTH = {50: 32, 101: 64, 200: 64}
_FILES = {50: "resnest50-528c19ca.pth", 101: "resnest101-22405ba7.pth", 200: "resnest200-75117900.pth"}


@BACKBONE_REGISTRY.register()
def build_resnest_backbone(cfg) -> ResNet:
    """ResNeSt-50/101/200 (MODEL.BACKBONE.DEPTH "50x", "101x", "200x"; fast-reid's "S50" is 50x)."""
    depth = parse_depth(cfg.MODEL.BACKBONE.DEPTH, sorted(_STEM_WIDTH))
    if cfg.MODEL.BACKBONE.WITH_NL:
        # fast-reid's AGW_S50 and sbs_S50 recipes set WITH_NL, which its ResNeSt ignores; so do we, to match.
        logger.info("ResNeSt has no non-local blocks: MODEL.BACKBONE.WITH_NL is ignored")
    return build_resnet_family(
        cfg,
        depth,
        [_FILES[depth]],
        with_nl=False,
        dilate_last=True,
        radix=2,
        groups=1,
        width_per_group=64,
        avd=True,
        deep_stem=True,
        stem_width=_STEM_WIDTH[depth],
        avg_down=True,
    )
