"""torchreid's ``models`` API (``build_model``, ``show_avai_models``) on fastreid's registries.

A torchreid name becomes a fastreid config (:func:`get_model_config`: fastreid's ResNet backbone with
torchvision's stem and :class:`fastreid.modeling.heads.TorchreidHead`, as ``configs/torchreid/`` writes it) built
by :func:`fastreid.modeling.build_model`. The result is a :class:`TorchreidModel`: a fastreid ``Baseline`` with
the same state-dict keys (so fastreid's trainer, evaluator and checkpointer use it unchanged, and torchreid's
checkpoints load through their layout) whose forward also follows torchreid's contract on bare image tensors.

Input convention, chosen so both sides stay exact: a bare tensor (or a torchreid batch ``{"img": ...}``) is
torchreid's already normalised image (``ToTensor`` then ``Normalize``) and reaches the backbone unchanged; a
fastreid batch ``{"images": ...}`` holds 0-255 pixels, normalised with ``pixel_mean``/``pixel_std`` (ImageNet
statistics × 255) as every fastreid model does.

``pretrained=True`` loads ImageNet weights as every fastreid backbone does (``MODEL.BACKBONE.PRETRAIN``): from
the torch hub cache (where torchvision and torchreid leave them), else by a checked download where fastreid knows
the file's URL and SHA-256 (never with ``FASTREID_OFFLINE=1``); when neither works a warning is logged once per
architecture and the model keeps its random initialisation.
"""
import logging
from collections import OrderedDict
from typing import Dict, List, Mapping, Tuple, Union

import torch
from torch import nn

from fastreid.config import CfgNode, get_cfg
from fastreid.modeling import build_model as build_fastreid_model
from fastreid.modeling.backbones.zoo import model_zoo, zoo_entry
from fastreid.modeling.meta_arch import Baseline

__all__ = ["TorchreidModel", "build_model", "get_model_config", "named_layers", "show_avai_models"]

logger = logging.getLogger(__name__)

# torchreid 0.2.5's model names: those fastreid builds are in its model zoo (``fastreid.modeling.backbones.zoo``).
_TORCHREID_NAMES = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
    "resnet50_fc512", "se_resnet50", "se_resnet50_fc512", "se_resnet101", "se_resnext50_32x4d",
    "se_resnext101_32x4d", "densenet121", "densenet169", "densenet201", "densenet161", "densenet121_fc512",
    "inceptionresnetv2", "inceptionv4", "xception", "resnet50_ibn_a", "resnet50_ibn_b", "nasnsetmobile",
    "mobilenetv2_x1_0", "mobilenetv2_x1_4", "shufflenet", "squeezenet1_0", "squeezenet1_0_fc512",
    "squeezenet1_1", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
    "mudeep", "resnet50mid", "hacnn", "pcb_p6", "pcb_p4", "mlfn", "osnet_x1_0", "osnet_x0_75", "osnet_x0_5",
    "osnet_x0_25", "osnet_ibn_x1_0", "osnet_ain_x1_0", "osnet_ain_x0_75", "osnet_ain_x0_5", "osnet_ain_x0_25",
)

_LOSSES = ("softmax", "triplet")
_warned_no_weights = set()


def show_avai_models() -> List[str]:
    """The torchreid model names :func:`build_model` accepts, logged at INFO and returned (torchreid prints
    them; fastreid logs, so the returned list is what an interactive session shows)."""
    names = [entry.name for entry in model_zoo()]
    logger.info("Available models: %s", names)
    return names


def _check_name(name: str) -> None:
    available = [entry.name for entry in model_zoo()]
    if name in available:
        return
    if name in _TORCHREID_NAMES:
        raise KeyError(f"Model '{name}' is a torchreid architecture that fastreid does not build yet; "
                       f"available: {available}")
    raise KeyError(f"Unknown model: '{name}'. Must be one of {available}")


def get_model_config(name: str, num_classes: int, loss: str = "softmax", pretrained: bool = True) -> CfgNode:
    """The fastreid config that builds torchreid's ``name`` (CPU device, as torchreid returns its models).

    Args:
        name: a torchreid model name (see :func:`show_avai_models`).
        num_classes: training identities (the classifier's outputs; 0 only for eval-only models).
        loss: "softmax" (label-smoothed cross-entropy, torchreid's default ``label_smooth=True``) or "triplet"
            (that plus the batch-hard triplet loss of margin 0.3), the losses torchreid's engines pair with it.
        pretrained: load torchvision's ImageNet weights from the torch hub cache (MODEL.BACKBONE.PRETRAIN).

    Raises:
        KeyError: for a name fastreid does not build, listing the available ones.
        ValueError: for another loss.
    """
    _check_name(name)
    if loss not in _LOSSES:
        raise ValueError(f"Unsupported loss: '{loss}'. Must be one of {list(_LOSSES)}")
    cfg = get_cfg()
    cfg.merge_from_list([
        "MODEL.DEVICE", "cpu",
        "MODEL.META_ARCHITECTURE", "Baseline",
        "MODEL.BACKBONE.NORM", "BN",
        "MODEL.BACKBONE.WITH_IBN", False,
        "MODEL.BACKBONE.WITH_SE", False,
        "MODEL.BACKBONE.WITH_NL", False,
        "MODEL.BACKBONE.PRETRAIN", bool(pretrained),
        "MODEL.HEADS.NAME", "TorchreidHead",
        "MODEL.HEADS.POOL_LAYER", "GlobalAvgPool",
        "MODEL.HEADS.EMBEDDING_DIM", 0,
        "MODEL.HEADS.NUM_CLASSES", num_classes,
        "MODEL.LOSSES.NAME", ("CrossEntropyLoss",) if loss == "softmax" else ("CrossEntropyLoss", "TripletLoss"),
        "MODEL.LOSSES.CE.EPSILON", 0.1,
        "MODEL.LOSSES.TRI.MARGIN", 0.3,
        "MODEL.LOSSES.TRI.HARD_MINING", True,
        "MODEL.LOSSES.TRI.NORM_FEAT", False,
    ])
    cfg.merge_from_list(list(zoo_entry(name).options))
    return cfg


class TorchreidModel(Baseline):
    """A fastreid ``Baseline`` that also answers torchreid's forward contract (see the module docstring).

    Args:
        loss: "softmax" or "triplet": what training mode returns for bare image tensors.
        name: the torchreid model name, kept for reference.
        backbone, heads, losses, pixel_mean, pixel_std: see :class:`fastreid.modeling.meta_arch.Baseline`.
    """

    def __init__(self, *, loss: str, name: str, **baseline) -> None:
        super().__init__(**baseline)
        self.loss = loss
        self.name = name

    def preprocess_image(self, batched_inputs) -> torch.Tensor:
        """fastreid batches (``"images"``, 0-255) are normalised; torchreid images (a bare tensor or ``"img"``)
        are already normalised and pass unchanged."""
        if isinstance(batched_inputs, Mapping) and "images" in batched_inputs:
            return super().preprocess_image(batched_inputs)
        images = batched_inputs["img"] if isinstance(batched_inputs, Mapping) else batched_inputs
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"Expected images as a B×3×H×W tensor, got {type(images).__name__}")
        return images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

    def targets_of(self, batched_inputs) -> torch.Tensor:
        """The identity labels: fastreid's ``"targets"`` or torchreid's ``"pid"``."""
        if isinstance(batched_inputs, Mapping) and "targets" not in batched_inputs and "pid" in batched_inputs:
            return batched_inputs["pid"].to(self.device, non_blocking=True).long()
        return super().targets_of(batched_inputs)

    def __getattr__(self, name: str):
        # torchreid's code reaches layers as attributes (model.classifier, model.layer4); they live one level
        # down here, so fall back on named_layers() (only once backbone and heads exist, to avoid recursion).
        try:
            return super().__getattr__(name)
        except AttributeError:
            modules = self.__dict__.get("_modules", {})
            layer = named_layers(self).get(name) if "backbone" in modules and "heads" in modules else None
            if layer is None:
                raise
            return layer

    def featuremaps(self, images) -> torch.Tensor:
        """The backbone's B×C×h×w map of torchreid images (or a batch dict), as torchreid's ``featuremaps``."""
        return self.backbone(self.preprocess_image(images))

    def forward(
        self, batched_inputs, return_featuremaps: bool = False
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor], Dict]:
        """
        Args:
            batched_inputs: a B×3×H×W normalised image tensor (torchreid), or a batch dict (fastreid's
                ``{"images", "targets"}`` or torchreid's ``{"img", "pid"}``).
            return_featuremaps: return the backbone's B×C×h×w map instead (torchreid's argument, used by the
                activation-map visualisation).

        Returns:
            Eval mode: the B×D features. Training mode, tensor input: the B×K logits (loss "softmax") or
            (logits, B×D features) (loss "triplet"), as torchreid's models; dict input: the dict of loss terms,
            as every fastreid meta-architecture.
        """
        if return_featuremaps:
            return self.featuremaps(batched_inputs)
        if isinstance(batched_inputs, Mapping):
            return super().forward(batched_inputs)
        outputs = self.heads(self.featuremaps(batched_inputs))
        if not self.training:
            return outputs
        self.check_num_classes(self.heads.num_classes)
        if self.loss == "softmax":
            return outputs["cls_outputs"]
        return outputs["cls_outputs"], outputs["features"]


def build_model(
    name: str, num_classes: int, loss: str = "softmax", pretrained: bool = True, use_gpu: bool = True
) -> TorchreidModel:
    """Build torchreid's model ``name`` with fastreid's backbone and head (on the CPU, as torchreid does).

    Args:
        name: a torchreid model name (see :func:`show_avai_models`).
        num_classes: training identities (``datamanager.num_train_pids``).
        loss: "softmax" or "triplet" (see :class:`TorchreidModel` and :func:`get_model_config`).
        pretrained: ImageNet weights (hub cache, else a checked download where fastreid knows the file's URL and
            SHA-256); a warning and random initialisation when neither is possible.
        use_gpu: accepted for torchreid's signature; these architectures do not use it (move the model with
            ``.cuda()`` or ``.to(device)`` as in torchreid).

    Returns:
        The model, state-dict keys ``backbone.*`` / ``heads.*`` as fastreid's ``Baseline``.

    Raises:
        KeyError: for a name fastreid does not build, listing the available ones.
    """
    del use_gpu  # torchreid passes it to its models' constructors; none of these reads it
    cfg = get_model_config(name, num_classes, loss, pretrained)
    try:
        base = build_fastreid_model(cfg)
    except FileNotFoundError as e:
        if not pretrained:
            raise
        if name not in _warned_no_weights:
            _warned_no_weights.add(name)
            logger.warning("%s: pretrained=True but no ImageNet weights could be found or downloaded; keeping "
                           "random initialisation. %s", name, e)
        cfg.MODEL.BACKBONE.PRETRAIN = False
        base = build_fastreid_model(cfg)
    return TorchreidModel(
        loss=loss, name=name, backbone=base.backbone, heads=base.heads, losses=list(base.losses),
        pixel_mean=cfg.MODEL.PIXEL_MEAN, pixel_std=cfg.MODEL.PIXEL_STD,
    ).to(base.device)


def named_layers(model: nn.Module) -> "OrderedDict[str, nn.Module]":
    """torchreid's top-level layers of ``model`` by name, as its ``named_children()`` lists them.

    torchreid names a model's layers by their attribute (``conv1``, ``layer4``, ``fc``, ``classifier``, ...)
    for ``staged_lr``'s ``new_layers`` and the engine's ``open_layers``. A :class:`TorchreidModel` holds them
    one level down, in its backbone and head (whose pooling torchreid calls ``global_avgpool``); any other
    module is taken as it is, so a user's own torchreid-style model works too.
    """
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        model = model.module
    if not isinstance(model, TorchreidModel):
        return OrderedDict(model.named_children())
    # The backbone's empty non-local slots (NL_1 ... NL_4) are not layers of torchreid's model.
    layers = OrderedDict(
        (key, m) for key, m in model.backbone.named_children() if not (isinstance(m, nn.ModuleList) and not len(m))
    )
    for key, module in model.heads.named_children():
        layers["global_avgpool" if key == "pool_layer" else key] = module
    return layers
