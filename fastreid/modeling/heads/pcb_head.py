"""PCB's part head (Sun et al., "Beyond Part Models", ECCV 2018), as torchreid's ``pcb_p6`` / ``pcb_p4``.

The backbone map is average-pooled into ``num_parts`` horizontal stripes. Training: dropout, a shared 1×1
convolution reducing each stripe (``conv5``: Conv, BN, ReLU) and one classifier per stripe; the logits are a
list, one B×K tensor per part, whose losses torchreid's engine averages (``Engine.compute_loss``). Eval: the
pooled stripes, each L2-normalised over channels, flattened as torchreid does (channel-major: C × parts).
Module names (``parts_avgpool``, ``conv5.layers``, ``classifier.<i>``) are torchreid's.
"""
from typing import Dict, List, Union

import torch
from torch import nn
from torch.nn import functional as F

from fastreid.config import configurable

from .build import REID_HEADS_REGISTRY
from .reid_arch_heads import head_options, init_head_weights, make_classifier

__all__ = ["DimReduceLayer", "PCBHead", "PartAvgPool"]


class DimReduceLayer(nn.Module):
    """1×1 convolution, BatchNorm and a non-linearity ("relu", "leakyrelu" or "none"), in ``layers``."""

    def __init__(self, in_channels: int, out_channels: int, nonlinear: str = "relu") -> None:
        super().__init__()
        layers = [nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)]
        if nonlinear == "relu":
            layers.append(nn.ReLU(inplace=True))
        elif nonlinear == "leakyrelu":
            layers.append(nn.LeakyReLU(0.1))
        elif nonlinear != "none":
            raise ValueError(f"DimReduceLayer: nonlinear must be 'relu', 'leakyrelu' or 'none', got {nonlinear!r}")
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class PartAvgPool(nn.Module):
    """Average pooling into ``parts`` horizontal stripes over the full width: ``AdaptiveAvgPool2d((parts, 1))``'s
    windows (rows ⌊i·h/P⌋ to ⌈(i+1)·h/P⌉), written as slices so it exports to ONNX when P does not divide h."""

    def __init__(self, parts: int) -> None:
        super().__init__()
        self.parts = parts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B×C×h×w → B×C×P×1."""
        h, p = x.shape[2], self.parts
        # Non-negative integer arithmetic only: ONNX's integer division truncates, Python's floors.
        bounds = [((i * h) // p, ((i + 1) * h + p - 1) // p) for i in range(p)]
        return torch.cat([x[:, :, start:end].mean((2, 3), keepdim=True) for start, end in bounds], 2)


@REID_HEADS_REGISTRY.register()
class PCBHead(nn.Module):
    """Part pooling, per-part reduction and per-part classifiers.

    Args:
        feat_dim: channels C of the backbone map.
        num_classes: training identities (0 for eval-only models).
        num_parts: horizontal stripes P (6 for ``pcb_p6``, 4 for ``pcb_p4``).
        reduced_dim: width of each stripe after ``conv5`` (256).
        dropout: dropout probability before ``conv5`` (0.5).

    Attributes:
        embedding_dim (int): width of the eval features, C × P.
    """

    # The identity classifiers: ``classifier`` holds one per part (SOLVER.FREEZE_FC_ITERS freezes them all).
    classifier_names = ("classifier",)

    @configurable
    def __init__(self, *, feat_dim: int, num_classes: int, num_parts: int = 6, reduced_dim: int = 256,
                 dropout: float = 0.5) -> None:
        super().__init__()
        if num_parts < 1:
            raise ValueError(f"PCBHead needs at least one part (MODEL.HEADS.NUM_PARTS), got {num_parts}")
        self.num_classes = num_classes
        self.num_parts = num_parts
        self.parts_avgpool = PartAvgPool(num_parts)
        self.dropout = nn.Dropout(p=dropout)
        self.conv5 = DimReduceLayer(feat_dim, reduced_dim, nonlinear="relu")
        self.classifier = nn.ModuleList(make_classifier(reduced_dim, num_classes) for _ in range(num_parts))
        self.embedding_dim = feat_dim * num_parts
        init_head_weights(self)

    @classmethod
    def from_config(cls, cfg, in_channels: int) -> Dict:
        return {**head_options(cfg, in_channels, 256, dim_arg="reduced_dim"), "num_parts": cfg.MODEL.HEADS.NUM_PARTS}

    def forward(
        self, features: torch.Tensor, targets: torch.Tensor = None
    ) -> Union[torch.Tensor, Dict[str, Union[torch.Tensor, List[torch.Tensor]]]]:
        """
        Args:
            features: B×C×h×w backbone map (h ≥ P keeps the stripes disjoint).
            targets: unused.

        Returns:
            Eval mode: B×(C·P) features. Training mode: {"cls_outputs": list of P B×K logits,
            "pred_class_logits": their sum (for the accuracy), "features": the B×(C·P) normalised stripes}.
        """
        v_g = self.parts_avgpool(features)
        normalised = F.normalize(v_g, p=2, dim=1).flatten(1)
        if not self.training:
            return normalised
        v_h = self.conv5(self.dropout(v_g))
        logits = [cls(v_h[:, :, i, 0]) for i, cls in enumerate(self.classifier)]
        return {"cls_outputs": logits, "pred_class_logits": torch.stack(logits).sum(0), "features": normalised}
