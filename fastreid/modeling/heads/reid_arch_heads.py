"""Heads of torchreid's re-id architectures whose features fuse several branches: ResNet-mid, MuDeep and HACNN
(see ``fastreid/modeling/backbones/{resnet_mid,mudeep,hacnn}.py`` for their backbones).

Each backbone returns one map (HACNN and ResNet-mid: their branches as channel groups, which the head splits);
the head applies torchreid's fc layers and classifier(s) under torchreid's module names (``fc_fusion``, ``fc``,
``fc_global``, ``classifier_local``, ...), so torchreid's checkpoints map onto ``heads.*`` by name.

Training outputs follow :class:`~fastreid.modeling.heads.TorchreidHead`'s dict; a head with several
classifiers (HACNN) gives lists under "cls_outputs" and "features", which torchreid's engine averages the loss
over (``Engine.compute_loss``), and their sum under "pred_class_logits" for the accuracy.
"""
import warnings
from typing import Dict, List, Sequence, Union

import torch
from torch import nn
from torch.nn import functional as F

from fastreid.config import configurable

from .build import REID_HEADS_REGISTRY

__all__ = [
    "FusedHead",
    "HACNNHead",
    "MuDeepHead",
    "ResNetMidHead",
    "fc_bn_relu",
    "head_options",
    "init_head_weights",
    "make_classifier",
]

HeadOutput = Union[torch.Tensor, Dict[str, Union[torch.Tensor, List[torch.Tensor]]]]


def fc_bn_relu(in_features: int, out_features: int) -> nn.Sequential:
    """torchreid's fc layer: Linear, BatchNorm1d, ReLU (indices 0, 1, 2 as in its checkpoints)."""
    return nn.Sequential(nn.Linear(in_features, out_features), nn.BatchNorm1d(out_features), nn.ReLU(inplace=True))


def make_classifier(in_features: int, num_classes: int) -> nn.Linear:
    """A Linear classifier with bias; ``num_classes`` 0 (eval-only configs) gives an empty one silently."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
        return nn.Linear(in_features, num_classes)


def init_head_weights(module: nn.Module) -> None:
    """torchreid's initialisation of head layers: Linear N(0, 0.01) with zero bias, norms to identity, convs
    Kaiming (fan out)."""
    for m in module.modules():
        if isinstance(m, nn.Linear) and m.weight.numel():
            nn.init.normal_(m.weight, 0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def head_options(cfg, in_channels: int, default_dim: int, dim_arg: str = "embedding_dim") -> Dict:
    """The constructor arguments these heads share: ``feat_dim`` (the backbone's channels), ``num_classes`` and
    the width of their fc / reduction layer under ``dim_arg`` (MODEL.HEADS.EMBEDDING_DIM, or ``default_dim``
    when that is 0)."""
    heads = cfg.MODEL.HEADS
    dim = heads.EMBEDDING_DIM if heads.EMBEDDING_DIM > 0 else default_dim
    return {"feat_dim": in_channels, "num_classes": heads.NUM_CLASSES, dim_arg: dim}


class FusedHead(nn.Module):
    """Base of these heads: ``from_config`` builds them from :func:`head_options` with the class's
    ``default_dim`` (torchreid's width of the fc layer)."""

    default_dim: int = 0

    @classmethod
    def from_config(cls, cfg, in_channels: int) -> Dict:
        return head_options(cfg, in_channels, cls.default_dim)


def _split(features: torch.Tensor, sizes: Sequence[int], owner: str) -> List[torch.Tensor]:
    if features.shape[1] != sum(sizes):
        raise ValueError(f"{owner} expects {sum(sizes)} input channels (groups {list(sizes)}), got "
                         f"{features.shape[1]}: pair it with its own backbone")
    return list(torch.split(features, list(sizes), dim=1))


def _train_dict(logits: torch.Tensor, features: torch.Tensor) -> Dict[str, torch.Tensor]:
    return {"cls_outputs": logits, "pred_class_logits": logits, "features": features}


@REID_HEADS_REGISTRY.register()
class ResNetMidHead(FusedHead):
    """ResNet-mid's head: the pooled outputs of layer4's first two blocks, concatenated, through
    ``fc_fusion``; the feature is that concatenated with the pooled last block.

    Args:
        feat_dim: input channels, 3 × C (the three layer4 block outputs).
        num_classes: training identities (0 for eval-only models).
        embedding_dim: width of ``fc_fusion`` (torchreid's ``fc_dims=[1024]``).
    """

    default_dim = 1024

    @configurable
    def __init__(self, *, feat_dim: int, num_classes: int, embedding_dim: int = 1024) -> None:
        super().__init__()
        if feat_dim % 3:
            raise ValueError(f"ResNetMidHead needs 3 equal channel groups, got {feat_dim} channels")
        self.num_classes = num_classes
        c = feat_dim // 3
        self.sizes = (2 * c, c)
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc_fusion = fc_bn_relu(2 * c, embedding_dim)
        self.embedding_dim = embedding_dim + c
        self.classifier = make_classifier(self.embedding_dim, num_classes)
        init_head_weights(self)

    def forward(self, features: torch.Tensor, targets: torch.Tensor = None) -> HeadOutput:
        """
        Args:
            features: B×3C×h×w, layer4's block outputs concatenated along channels.
            targets: unused.

        Returns:
            Eval mode: B×(1024 + C) features. Training mode: the dict of :class:`TorchreidHead`.
        """
        v4ab, v4c = _split(self.global_avgpool(features).flatten(1), self.sizes, type(self).__name__)
        v = torch.cat([self.fc_fusion(v4ab), v4c], 1)
        if not self.training:
            return v
        return _train_dict(self.classifier(v), v)


@REID_HEADS_REGISTRY.register()
class MuDeepHead(FusedHead):
    """MuDeep's head: the whole fused map flattened through ``fc`` (Linear, BatchNorm1d, ReLU), then
    ``classifier``. The map's size is fixed by the input size, so is ``fc``'s input width.

    Args:
        feat_dim: channels C of the map.
        map_size: (h, w) of the map (input size / 16; 16×8 at 256×128).
        num_classes: training identities (0 for eval-only models).
        embedding_dim: width of ``fc`` (4096).
    """

    default_dim = 4096

    @configurable
    def __init__(self, *, feat_dim: int, map_size: Sequence[int], num_classes: int, embedding_dim: int = 4096) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.map_size = tuple(map_size)
        self.fc = fc_bn_relu(feat_dim * self.map_size[0] * self.map_size[1], embedding_dim)
        self.classifier = make_classifier(embedding_dim, num_classes)
        self.embedding_dim = embedding_dim
        init_head_weights(self)

    @classmethod
    def from_config(cls, cfg, in_channels: int) -> Dict:
        h, w = cfg.INPUT.SIZE_TRAIN
        # MuDeep's backbone divides the input by 16 (a max pool, a reduction, the fusion's 4×4 pooling).
        return {**head_options(cfg, in_channels, cls.default_dim), "map_size": (h // 16, w // 16)}

    def forward(self, features: torch.Tensor, targets: torch.Tensor = None) -> HeadOutput:
        """
        Args:
            features: B×C×h×w with (h, w) = ``map_size``.
            targets: unused.

        Returns:
            Eval mode: the B×4096 fc output. Training mode: the dict of :class:`TorchreidHead`.
        """
        if tuple(features.shape[2:]) != self.map_size:
            raise ValueError(f"MuDeepHead was built for a {self.map_size} map (INPUT.SIZE_TRAIN / 16) but got "
                             f"{tuple(features.shape[2:])}: feed images of the size the model was built for")
        v = self.fc(features.flatten(1))
        if not self.training:
            return v
        return _train_dict(self.classifier(v), v)


@REID_HEADS_REGISTRY.register()
class HACNNHead(FusedHead):
    """HACNN's head: ``fc_global`` on the global branch and ``fc_local`` on the four concatenated regions, each
    with its classifier. Eval features are both, each L2-normalised, concatenated.

    Args:
        feat_dim: input channels, 5 × C (the global vector, then the four region vectors).
        num_classes: training identities (0 for eval-only models).
        embedding_dim: width of each branch's fc layer (torchreid's ``feat_dim``, 512).
    """

    default_dim = 512
    # The identity classifiers (SOLVER.FREEZE_FC_ITERS freezes them all).
    classifier_names = ("classifier_global", "classifier_local")

    @configurable
    def __init__(self, *, feat_dim: int, num_classes: int, embedding_dim: int = 512) -> None:
        super().__init__()
        if feat_dim % 5:
            raise ValueError(f"HACNNHead needs a global and four region groups of equal width, got {feat_dim}")
        self.num_classes = num_classes
        c = feat_dim // 5
        self.sizes = (c, 4 * c)
        self.fc_global = fc_bn_relu(c, embedding_dim)
        self.classifier_global = make_classifier(embedding_dim, num_classes)
        self.fc_local = fc_bn_relu(4 * c, embedding_dim)
        self.classifier_local = make_classifier(embedding_dim, num_classes)
        self.embedding_dim = 2 * embedding_dim
        init_head_weights(self)

    def forward(self, features: torch.Tensor, targets: torch.Tensor = None) -> HeadOutput:
        """
        Args:
            features: B×5C×1×1 (see :class:`fastreid.modeling.backbones.hacnn.HACNN`).
            targets: unused.

        Returns:
            Eval mode: B×1024 features (global and local, each L2-normalised). Training mode: "cls_outputs" and
            "features" are [global, local] lists, "pred_class_logits" their logits' sum.
        """
        x_global, x_local = _split(features.flatten(1), self.sizes, type(self).__name__)
        x_global, x_local = self.fc_global(x_global), self.fc_local(x_local)
        if not self.training:
            return torch.cat([F.normalize(x_global, dim=1), F.normalize(x_local, dim=1)], 1)
        logits = [self.classifier_global(x_global), self.classifier_local(x_local)]
        return {"cls_outputs": logits, "pred_class_logits": logits[0] + logits[1], "features": [x_global, x_local]}
