"""ResNeXt backbones (Xie et al. 2017): ResNet bottlenecks with a grouped 3×3 convolution, 32×4d as in
fast-reid and IBN-Net's ResNeXt-101-IBN-a."""
from .build import BACKBONE_REGISTRY
from .resnet import ResNet, torchreid_resnet_options, build_resnet_family, parse_depth
from .zoo import register_zoo_model

__all__ = ["build_resnext_backbone"]

_CARDINALITY = 32
_WIDTH_PER_GROUP = 4


@BACKBONE_REGISTRY.register()
def build_resnext_backbone(cfg) -> ResNet:
    """ResNeXt-50/101/152 32×4d (MODEL.BACKBONE.DEPTH "50x", "101x", "152x") with IBN-a, SE and non-local."""
    depth = parse_depth(cfg.MODEL.BACKBONE.DEPTH, (50, 101, 152))
    arch = f"resnext{depth}_ibn_a" if cfg.MODEL.BACKBONE.WITH_IBN else f"resnext{depth}_32x4d"
    known = {"resnext101_ibn_a": "resnext101_ibn_a-6ace051d.pth", "resnext50_32x4d": "resnext50_32x4d-7cdf4587.pth"}
    # IBN-a in all four stages, as fast-reid builds its ResNeXt (its checkpoints need that layout).
    return build_resnet_family(
        cfg,
        depth,
        [known.get(arch, f"{arch}.pth")],
        groups=_CARDINALITY,
        width_per_group=_WIDTH_PER_GROUP,
        ibn_stages=4,
        nl_per_depth={101: (0, 2, 3, 0)},  # fast-reid's ResNeXt-101 has 3 non-local blocks in stage 3, not 9
    )


register_zoo_model("resnext50_32x4d", torchreid_resnet_options("50x", builder="build_resnext_backbone"))
