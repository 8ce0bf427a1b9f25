"""Any torchvision classification model as a fastreid backbone (``build_torchvision_backbone``,
MODEL.BACKBONE.ARCH names the model).

The backbone is the model's feature trunk up to its last map: torchvision's feature extraction (``torch.fx``)
returns the input of the model's global pooling (for DenseNet that is after the final ReLU, as torchreid uses
it; for SqueezeNet the output of ``features``). Module names, hence state-dict keys, stay torchvision's (under
``body.``). Last stride, NORM and the error for an unknown name work as in the timm adapter.

ImageNet weights come from MODEL.BACKBONE.PRETRAIN_PATH (fastreid's loader, torchvision's keys), else through
torchvision's weights API: from the torch hub cache, or downloaded by torchvision unless ``$FASTREID_OFFLINE``
forbids it (then the error names the file to place and where).
"""
import copy
import logging
import os
from typing import Any, Callable, Dict, List

import torch
from torch import nn

from fastreid.modeling.pretrained import (
    PretrainedWeightsNotFound,
    find_in_hub_cache,
    hub_checkpoint_dir,
    load_pretrained_weights,
    resolve_pretrained_path,
)

from .build import BACKBONE_REGISTRY
from .timm_adapter import (
    close_matches,
    convert_batchnorm,
    fetch_library_weights,
    remove_last_downsampling,
    timm_backbone_kwargs,
)
from .zoo import register_zoo_model

__all__ = ["TorchvisionBackbone", "build_torchvision_backbone", "last_map_node", "torchvision_zoo_options"]

logger = logging.getLogger(__name__)

# Top-level graph nodes that start a torchvision classifier: global pooling (module or function), a mean over
# the spatial dimensions, the flattening, or SqueezeNet's convolutional classifier.
_HEAD_NODES = ("avgpool", "adaptive_avg_pool2d", "mean", "flatten")


def _classification_models() -> List[str]:
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)


def last_map_node(model: nn.Module, arch: str = "") -> str:
    """The name of the graph node holding ``model``'s last feature map: the node just before its classifier.

    Raises:
        ValueError: for a model without a spatial map before its classifier (the vision transformers).
    """
    from torchvision.models.feature_extraction import get_graph_node_names

    nodes = get_graph_node_names(model)[1]
    for i, node in enumerate(nodes):
        if i > 0 and (node in _HEAD_NODES or node.startswith("classifier")):
            return nodes[i - 1]
    raise ValueError(
        f"torchvision model '{arch or type(model).__name__}' has no feature map before its classifier (a vision "
        f"transformer?); use build_vit_backbone or a timm model with build_timm_backbone."
    )


def _pretrained_model(arch: str, create: Callable[..., nn.Module], pretrain_path: str,
                      model_kwargs: Dict[str, Any]) -> nn.Module:
    """``arch`` with ImageNet weights: ``pretrain_path``, else torchvision's own weights from the hub cache,
    else downloaded by torchvision (which checks the hash in the file name) when downloads are allowed."""
    import torchvision

    if pretrain_path:
        model = create()
        load_pretrained_weights(model, resolve_pretrained_path(pretrain_path, ()))
        return model
    if model_kwargs:
        raise PretrainedWeightsNotFound(
            f"torchvision publishes ImageNet weights of '{arch}' only for its default configuration, not for "
            f"{model_kwargs}. Give weights with MODEL.BACKBONE.PRETRAIN_PATH, or MODEL.BACKBONE.PRETRAIN False."
        )
    weights = torchvision.models.get_model_weights(arch).DEFAULT
    file_name = os.path.basename(weights.url)
    try:
        path = find_in_hub_cache([file_name])
    except FileNotFoundError:
        wanted = f"'{file_name}' (from {weights.url}) at {os.path.join(hub_checkpoint_dir(), file_name)}"
        return fetch_library_weights(wanted, lambda: create(weights=weights))
    if os.path.basename(path) == file_name:
        # torchvision's loader reads the cached file and applies its own key fixes (DenseNet's old names).
        return create(weights=weights)
    model = create()  # the same weights re-released under another hash
    load_pretrained_weights(model, path)
    return model


class TorchvisionBackbone(nn.Module):
    """The feature trunk of a torchvision classification model as a backbone.

    Args:
        arch: a torchvision model name (``torchvision.models.list_models()``), e.g. "densenet121".
        last_stride: 2 keeps the model's strides; 1 removes its last downsampling (see
            :func:`fastreid.modeling.backbones.timm_adapter.remove_last_downsampling`).
        norm: MODEL.BACKBONE.NORM, applied to the model's BatchNorm2d layers.
        pretrained: load ImageNet weights (``pretrain_path``, else torchvision's, see the module docstring).
        pretrain_path: a local weight file with torchvision's keys; "" looks in the torch hub cache.
        model_kwargs: more arguments of torchvision's model builder (e.g. ``width_mult`` of MobileNetV2).

    Attributes:
        out_channels (int): channels C of the output map.
        out_stride (int): the map's stride relative to the input.
        body: the extracted trunk (a ``torch.fx`` graph module with torchvision's module names).

    Raises:
        KeyError: for a name torchvision does not know, with close matches.
    """

    def __init__(self, arch: str, *, last_stride: int = 2, norm: str = "BN", pretrained: bool = False,
                 pretrain_path: str = "", **model_kwargs) -> None:
        super().__init__()
        import torchvision
        from torchvision.models.feature_extraction import create_feature_extractor

        available = _classification_models()
        if arch not in available:
            raise KeyError(
                f"Unknown torchvision model '{arch}' (MODEL.BACKBONE.ARCH). {close_matches(arch, available)} "
                f"torchvision.models.list_models() lists the names."
            )
        if last_stride not in (1, 2):
            raise ValueError(f"MODEL.BACKBONE.LAST_STRIDE must be 1 or 2 for '{arch}', got {last_stride}")

        def create(weights=None) -> nn.Module:
            return torchvision.models.get_model(arch, weights=weights, **model_kwargs)

        def trunk(model: nn.Module) -> nn.Module:
            return create_feature_extractor(model, return_nodes={last_map_node(model, arch): "out"})

        model = _pretrained_model(arch, create, pretrain_path, model_kwargs) if pretrained else create()
        self.body = trunk(model)
        try:
            with torch.device("meta"):
                meta = trunk(create())
        except NotImplementedError:  # builders computing sizes with tensors (RegNet) need real ones
            meta = copy.deepcopy(self.body).to("meta")
        if last_stride == 1:
            remove_last_downsampling(self.body, meta, arch)
        out = meta(torch.empty(1, 3, 256, 256, device="meta"))["out"]
        self.out_channels = int(out.shape[1])
        # The nominal stride (valid-padding networks end a few pixels short of 256 / stride).
        self.out_stride = 2 ** round(torch.log2(torch.tensor(256.0 / out.shape[-2])).item())
        self.body = convert_batchnorm(self.body, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map B×3×H×W images to the B×``out_channels``×H/s×W/s map (s = ``out_stride``)."""
        return self.body(x)["out"]


@BACKBONE_REGISTRY.register()
def build_torchvision_backbone(cfg) -> TorchvisionBackbone:
    """Any torchvision classification model by name (MODEL.BACKBONE.ARCH), reading LAST_STRIDE, NORM, PRETRAIN
    and PRETRAIN_PATH."""
    arch = cfg.MODEL.BACKBONE.ARCH
    if not arch:
        raise ValueError(
            "build_torchvision_backbone needs the torchvision model name in MODEL.BACKBONE.ARCH, e.g. 'densenet121'"
        )
    return TorchvisionBackbone(arch, **timm_backbone_kwargs(cfg))


def torchvision_zoo_options(arch: str, channels: int, last_stride: int = 2, fc_dim: int = 0) -> tuple:
    """Zoo options of a torchreid model that is torchvision's ``arch`` trunk plus torchreid's head."""
    return ("MODEL.BACKBONE.NAME", "build_torchvision_backbone", "MODEL.BACKBONE.ARCH", arch,
            "MODEL.BACKBONE.LAST_STRIDE", last_stride, "MODEL.BACKBONE.FEAT_DIM", channels,
            "MODEL.HEADS.EMBEDDING_DIM", fc_dim)


# torchreid's DenseNets and SqueezeNets are torchvision's networks with its ImageNet weights and torchreid's head
# (global average pooling, an fc 512 layer for the *_fc512 names); resnext101_32x8d likewise.
_TORCHVISION_ZOO: Dict[str, tuple] = {
    "densenet121": torchvision_zoo_options("densenet121", 1024),
    "densenet121_fc512": torchvision_zoo_options("densenet121", 1024, fc_dim=512),
    "densenet161": torchvision_zoo_options("densenet161", 2208),
    "densenet169": torchvision_zoo_options("densenet169", 1664),
    "densenet201": torchvision_zoo_options("densenet201", 1920),
    "squeezenet1_0": torchvision_zoo_options("squeezenet1_0", 512),
    "squeezenet1_0_fc512": torchvision_zoo_options("squeezenet1_0", 512, fc_dim=512),
    "squeezenet1_1": torchvision_zoo_options("squeezenet1_1", 512),
    "resnext101_32x8d": torchvision_zoo_options("resnext101_32x8d", 2048),
}
# torchreid's MODEL_ZOO.md: parameters in millions without the classifier.
_PUBLISHED = {"densenet121_fc512": {"params_m": 7.5}, "squeezenet1_0_fc512": {"params_m": 1.0}}
for _name, _options in _TORCHVISION_ZOO.items():
    register_zoo_model(_name, _options, published=_PUBLISHED.get(_name))
