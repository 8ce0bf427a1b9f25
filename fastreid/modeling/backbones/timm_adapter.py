"""Any timm model as a fastreid backbone (``build_timm_backbone``, MODEL.BACKBONE.ARCH names the model).

The model is built by timm with ``features_only=True`` keeping only its last stage; its output channels and
stride come from timm's ``feature_info``. Also here, shared with the torchvision adapter: the re-id last-stride
option for a network we did not write (:func:`last_downsampling_layers`, :func:`set_stride_one`), found by
running a copy of the network on the meta device, and :func:`convert_batchnorm` for MODEL.BACKBONE.NORM.

ImageNet weights are read by timm's own loader from MODEL.BACKBONE.PRETRAIN_PATH, the Hugging Face hub cache or
the torch hub cache, in that order (:func:`timm_weights_file`); failing those timm downloads them, unless
``$FASTREID_OFFLINE`` forbids it (then the error names the file to place and where).
"""
import difflib
import http.client
import logging
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

import torch
from torch import nn

from fastreid.layers import get_norm
from fastreid.modeling.pretrained import (
    OFFLINE_ENV,
    PretrainedWeightsNotFound,
    downloads_allowed,
    hub_checkpoint_dir,
)

from .build import BACKBONE_REGISTRY
from .zoo import register_zoo_model

__all__ = [
    "TimmBackbone",
    "build_timm_backbone",
    "close_matches",
    "convert_batchnorm",
    "fetch_library_weights",
    "last_downsampling_layers",
    "remove_last_downsampling",
    "set_stride_one",
    "timm_backbone_kwargs",
    "timm_weights_file",
    "timm_zoo_options",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Big enough for the valid-padding networks (Inception) to keep a map of several pixels at stride 32; only ever
# run on the meta device, so the size costs nothing.
_PROBE_SIZE = (256, 256)
_STRIDED = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


def close_matches(name: str, available: Sequence[str]) -> str:
    """A "did you mean" fragment naming up to five entries of ``available`` close to ``name``."""
    matches = difflib.get_close_matches(name, available, n=5, cutoff=0.5)
    return f"Close matches: {matches}." if matches else "No close match."


def _pair(value: Any) -> Tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _probe(module: nn.Module, size: Tuple[int, int]) -> Tuple[torch.Tensor, List[Tuple[str, int]]]:
    """Run ``module`` (on the meta device) in eval mode; return its output map and, in call order, the
    (name, input height) of every strided convolution or pooling that reduced the map."""
    device = next(module.parameters()).device
    records: List[Tuple[str, int]] = []
    handles = []
    for name, m in module.named_modules():
        if isinstance(m, _STRIDED) and max(_pair(m.stride)) > 1:
            def hook(mod, inputs, output, name=name):
                if output.shape[-2] < inputs[0].shape[-2]:
                    records.append((name, inputs[0].shape[-2]))
            handles.append(m.register_forward_hook(hook))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(torch.empty(1, 3, *size, device=device))
    finally:
        module.train(was_training)
        for h in handles:
            h.remove()
    if isinstance(out, (list, tuple)):
        out = out[-1]
    elif isinstance(out, dict):
        out = list(out.values())[-1]
    return out, records


def last_downsampling_layers(module: nn.Module, size: Tuple[int, int] = _PROBE_SIZE) -> List[str]:
    """Names of the strided convolutions and poolings that make the last downsampling of ``module`` (every
    branch of it: main path and shortcut, or the parallel branches of an Inception reduction block).

    Args:
        module: a network mapping B×3×H×W to a map; best a copy on the meta device (nothing is computed).
        size: (H, W) of the probe input.
    """
    _, records = _probe(module, size)
    if not records:
        return []
    smallest = min(h for _, h in records)
    return list(dict.fromkeys(name for name, h in records if h == smallest))


def set_stride_one(module: nn.Module, names: Sequence[str]) -> None:
    """Give the layers ``names`` of ``module`` stride 1; a pooling whose window equals its stride (the average
    pool of a ResNet-D shortcut) becomes a 1×1 window, so every branch keeps the same size."""
    for name in names:
        layer = module.get_submodule(name)
        if not isinstance(layer, nn.Conv2d) and _pair(layer.kernel_size) == _pair(layer.stride):
            layer.kernel_size = 1 if isinstance(layer.kernel_size, int) else (1, 1)
        layer.stride = 1 if isinstance(layer.stride, int) else (1, 1)


def remove_last_downsampling(module: nn.Module, meta_copy: nn.Module, arch: str) -> None:
    """The re-id last-stride option (MODEL.BACKBONE.LAST_STRIDE 1) for a network we did not write: the layers
    of the last downsampling get stride 1, found and checked on ``meta_copy``, then changed in ``module``.

    Args:
        module: the network to change.
        meta_copy: the same architecture built on the meta device (changed too).
        arch: the model's name, for the error message.

    Raises:
        ValueError: when the network does not allow it (its last downsampling is not a strided convolution or
            pooling, e.g. patch merging, or the map does not grow).
    """
    try:
        before = _probe(meta_copy, _PROBE_SIZE)[0].shape[-2]
        names = last_downsampling_layers(meta_copy)
        set_stride_one(meta_copy, names)
        after = _probe(meta_copy, _PROBE_SIZE)[0].shape[-2]
    except (RuntimeError, AssertionError, ValueError) as e:  # timm asserts fixed input sizes
        raise ValueError(
            f"MODEL.BACKBONE.LAST_STRIDE 1 is not possible for '{arch}': its stride cannot be changed ({e}). "
            f"Use LAST_STRIDE 2."
        ) from e
    # The map must grow about twice (not 4×: then the strided layer found was a patch embedding and the real last
    # downsampling something else, such as patch merging).
    if not names or not 1.5 * before <= after <= 2.5 * before:
        raise ValueError(
            f"MODEL.BACKBONE.LAST_STRIDE 1 is not possible for '{arch}': its last downsampling is not a strided "
            f"convolution or pooling module. Use LAST_STRIDE 2."
        )
    set_stride_one(module, names)
    logger.info("%s: last stride 1 (stride 1 in %s)", arch, ", ".join(names))


def convert_batchnorm(module: nn.Module, norm: str) -> nn.Module:
    """Replace every ``nn.BatchNorm2d`` of ``module`` by ``get_norm(norm, C)`` (MODEL.BACKBONE.NORM), keeping
    its affine parameters and statistics where the new layer has them. "BN" leaves ``module`` unchanged.

    Returns:
        ``module`` (or its replacement when ``module`` itself is a BatchNorm2d).
    """
    if norm == "BN":
        return module
    if isinstance(module, nn.BatchNorm2d):
        state = module.state_dict()
        new = get_norm(norm, module.num_features)
        if state:
            new.to(next(iter(state.values())).device)
            new.load_state_dict({k: v for k, v in state.items() if k in new.state_dict()}, strict=False)
        return new
    for name, child in module.named_children():
        new = convert_batchnorm(child, norm)
        if new is not child:
            setattr(module, name, new)
    return module


def fetch_library_weights(wanted: str, load: Callable[[], T]) -> T:
    """Run ``load``, a timm or torchvision call that downloads ImageNet weights with the library's own
    verification, when downloads are allowed (see :func:`fastreid.modeling.pretrained.downloads_allowed`).

    Args:
        wanted: what to place where, for the error (e.g. "'x.pth' (from URL) in /root/.cache/torch/...").
        load: the downloading call.

    Raises:
        PretrainedWeightsNotFound: downloads are off or failed, naming ``wanted`` and the other ways out.
    """
    def not_found(reason: str) -> PretrainedWeightsNotFound:
        return PretrainedWeightsNotFound(
            f"ImageNet weights are not available locally and {reason}. Put {wanted}; or give the file with "
            f"MODEL.BACKBONE.PRETRAIN_PATH; or train from scratch with MODEL.BACKBONE.PRETRAIN False."
        )

    if not downloads_allowed():
        raise not_found(f"downloading is off (${OFFLINE_ENV} is set)")
    try:
        return load()
    except (OSError, http.client.HTTPException) as e:  # URLError, requests' and huggingface_hub's errors
        raise not_found(f"downloading them failed (offline? {e})") from e


def timm_weights_file(arch: str, pretrain_path: str = "") -> Tuple[Optional[str], str]:
    """Where timm's ImageNet weights of ``arch`` are locally: ``pretrain_path`` when given, else the file timm
    would download, looked up in the Hugging Face hub cache and the torch hub cache. Never downloads.

    Returns:
        (path or None when not found, a description of the file to place and where).

    Raises:
        FileNotFoundError: for a ``pretrain_path`` that does not exist, or a model timm has no weights for.
    """
    if pretrain_path:
        if not os.path.isfile(pretrain_path):
            raise FileNotFoundError(
                f"MODEL.BACKBONE.PRETRAIN_PATH '{pretrain_path}' does not exist. Fix the path, or train from "
                f"scratch with MODEL.BACKBONE.PRETRAIN False."
            )
        return pretrain_path, pretrain_path
    import huggingface_hub
    import timm

    cfg = timm.models.get_pretrained_cfg(arch)
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        raise FileNotFoundError(
            f"timm has no ImageNet weights for '{arch}'. Give a file with MODEL.BACKBONE.PRETRAIN_PATH, or train "
            f"from scratch with MODEL.BACKBONE.PRETRAIN False."
        )
    wanted = []
    if cfg.hf_hub_id:
        filenames = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else ("model.safetensors", "pytorch_model.bin")
        for filename in filenames:
            found = huggingface_hub.try_to_load_from_cache(cfg.hf_hub_id, filename)
            if isinstance(found, str):
                return found, found
        wanted.append(f"the Hugging Face repository '{cfg.hf_hub_id}' ({' or '.join(filenames)}) in the Hugging "
                      f"Face hub cache {huggingface_hub.constants.HF_HUB_CACHE} (`huggingface-cli download "
                      f"{cfg.hf_hub_id}` fills it)")
    if cfg.url:
        name = os.path.basename(cfg.url)
        path = os.path.join(hub_checkpoint_dir(), name)
        if os.path.isfile(path):
            return path, path
        wanted.append(f"'{name}' (from {cfg.url}) at {path}")
    return None, " or ".join(wanted)


class TimmBackbone(nn.Module):
    """The last stage of a timm model (``features_only``) as a backbone.

    Args:
        arch: a timm model name (``timm.list_models()``), e.g. "legacy_seresnet50", "inception_v4".
        last_stride: 2 keeps the model's strides; 1 removes its last downsampling (see
            :func:`remove_last_downsampling`).
        norm: MODEL.BACKBONE.NORM, applied to the model's BatchNorm2d layers (see :func:`convert_batchnorm`).
        pretrained: load timm's ImageNet weights (through timm's loader: a local file found by
            :func:`timm_weights_file`, else timm's download when allowed).
        pretrain_path: a local weight file in the layout timm loads; "" looks in the hub caches.
        model_kwargs: more arguments for ``timm.create_model``.

    Attributes:
        out_channels (int): channels C of the output map.
        out_stride (int): the map's stride relative to the input.
        body: timm's feature extractor (its state-dict keys are timm's, under ``body.``).

    Raises:
        KeyError: for a name timm does not know, with close matches.
    """

    def __init__(self, arch: str, *, last_stride: int = 2, norm: str = "BN", pretrained: bool = False,
                 pretrain_path: str = "", **model_kwargs) -> None:
        super().__init__()
        import timm

        if not timm.is_model(arch):
            raise KeyError(
                f"Unknown timm model '{arch}' (MODEL.BACKBONE.ARCH). {close_matches(arch, timm.list_models())} "
                f"timm.list_models('*pattern*') lists the names."
            )
        if last_stride not in (1, 2):
            raise ValueError(f"MODEL.BACKBONE.LAST_STRIDE must be 1 or 2 for '{arch}', got {last_stride}")

        def create(**extra) -> nn.Module:
            return timm.create_model(arch, features_only=True, out_indices=(-1,), **model_kwargs, **extra)

        if not pretrained:
            self.body = create()
        else:
            path, wanted = timm_weights_file(arch, pretrain_path)
            if path is not None:
                self.body = create(pretrained=True, pretrained_cfg_overlay=dict(file=path))
            else:
                self.body = fetch_library_weights(wanted, lambda: create(pretrained=True))
        self.out_channels = int(self.body.feature_info.channels()[-1])
        self.out_stride = int(self.body.feature_info.reduction()[-1])
        if last_stride == 1:
            with torch.device("meta"):
                meta = create()
            remove_last_downsampling(self.body, meta, arch)
            self.out_stride //= 2
        self.body = convert_batchnorm(self.body, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map B×3×H×W images to the B×``out_channels``×H/s×W/s map (s = ``out_stride``)."""
        return self.body(x)[-1]


def timm_backbone_kwargs(cfg) -> Dict[str, Any]:
    """The common MODEL.BACKBONE keys as :class:`TimmBackbone` / ``TorchvisionBackbone`` arguments."""
    bb = cfg.MODEL.BACKBONE
    return dict(last_stride=bb.LAST_STRIDE, norm=bb.NORM, pretrained=bb.PRETRAIN, pretrain_path=bb.PRETRAIN_PATH)


@BACKBONE_REGISTRY.register()
def build_timm_backbone(cfg) -> TimmBackbone:
    """Any timm model by name (MODEL.BACKBONE.ARCH), reading LAST_STRIDE, NORM, PRETRAIN and PRETRAIN_PATH."""
    arch = cfg.MODEL.BACKBONE.ARCH
    if not arch:
        raise ValueError("build_timm_backbone needs the timm model name in MODEL.BACKBONE.ARCH, e.g. 'resnet50d'")
    return TimmBackbone(arch, **timm_backbone_kwargs(cfg))


def timm_zoo_options(arch: str, channels: int, last_stride: int = 2, fc_dim: int = 0) -> Tuple[Any, ...]:
    """Zoo options of a torchreid model that is timm's ``arch`` plus torchreid's head."""
    return ("MODEL.BACKBONE.NAME", "build_timm_backbone", "MODEL.BACKBONE.ARCH", arch,
            "MODEL.BACKBONE.LAST_STRIDE", last_stride, "MODEL.BACKBONE.FEAT_DIM", channels,
            "MODEL.HEADS.EMBEDDING_DIM", fc_dim)


# torchreid's Inception, Xception and SENet models are Cadene's pretrainedmodels networks, which timm keeps with
# the same module names (Xception and SENet under "legacy_"); torchreid uses them at last stride 2 without an fc
# layer, except se_resnet50_fc512 (last stride 1, fc 512). senet154 and se_resnet152 are defined but not
# registered by torchreid; they are here under its names.
_TIMM_ZOO: Dict[str, Tuple[Any, ...]] = {
    "inceptionv4": timm_zoo_options("inception_v4", 1536),
    "inceptionresnetv2": timm_zoo_options("inception_resnet_v2", 1536),
    "xception": timm_zoo_options("legacy_xception", 2048),
    "se_resnet50": timm_zoo_options("legacy_seresnet50", 2048),
    "se_resnet50_fc512": timm_zoo_options("legacy_seresnet50", 2048, last_stride=1, fc_dim=512),
    "se_resnet101": timm_zoo_options("legacy_seresnet101", 2048),
    "se_resnet152": timm_zoo_options("legacy_seresnet152", 2048),
    "se_resnext50_32x4d": timm_zoo_options("legacy_seresnext50_32x4d", 2048),
    "se_resnext101_32x4d": timm_zoo_options("legacy_seresnext101_32x4d", 2048),
    "senet154": timm_zoo_options("legacy_senet154", 2048),
}
# torchreid's MODEL_ZOO.md: parameters in millions without the classifier.
_PUBLISHED = {"se_resnet50_fc512": {"params_m": 27.1}}
for _name, _options in _TIMM_ZOO.items():
    register_zoo_model(_name, _options, published=_PUBLISHED.get(_name))
