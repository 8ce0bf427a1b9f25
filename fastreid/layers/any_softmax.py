"""Classification layers of reid heads: plain linear logits and margin-based cosine softmaxes.

Registered in ``CLASSIFIER_REGISTRY`` under the class name and fast-reid's other spelling
(``linear``, ``arcSoftmax``, ``circleSoftmax``, ``cosSoftmax``). Each layer owns its class-centre weight
(num_classes × in_features) and returns two logit tensors: ``cls_outputs`` (with the margin applied to the
target class, fed to the classification loss) and ``pred_class_logits`` (without margin, for accuracy).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from fastreid.utils.registry import Registry

__all__ = ["CLASSIFIER_REGISTRY", "build_classifier", "Linear", "CosSoftmax", "ArcSoftmax", "CircleSoftmax"]

CLASSIFIER_REGISTRY = Registry("CLASSIFIER")
CLASSIFIER_REGISTRY.__doc__ = """Classification layers by class name, built as
``cls(in_features, num_classes, scale=..., margin=...)``. MODEL.HEADS.CLS_LAYER names one."""


@CLASSIFIER_REGISTRY.register()
class Linear(nn.Module):
    """Bias-free linear classifier; ``scale`` and ``margin`` are accepted and unused.

    Args:
        in_features: feature dimension D.
        num_classes: number of classes K.
    """

    def __init__(self, in_features: int, num_classes: int, scale: float = 1.0, margin: float = 0.0) -> None:
        super().__init__()
        self.in_features = in_features
        self.num_classes = num_classes
        self.s = scale
        self.m = margin
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.normal_(self.weight, std=0.01)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """Plain logits B×K (before any scale or margin)."""
        return F.linear(features, self.weight)

    def forward(
        self, features: torch.Tensor, targets: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            features: B×D.
            targets: B class indices (long); needed by margin layers in training.

        Returns:
            (cls_outputs, pred_class_logits), both B×K.
        """
        logits = self.logits(features)
        return logits, logits

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}, scale={self.s}, margin={self.m}"


class _CosineMarginSoftmax(Linear):
    """Logits are cosines between L2-normalised features and class centres, scaled by ``scale``."""

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(features, dim=1), F.normalize(self.weight, dim=1))

    def apply_margin(self, cosine: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self, features: torch.Tensor, targets: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        cosine = self.logits(features)
        plain = cosine * self.s
        if targets is None:
            return plain, plain
        # Margins in at least float32: in fp16, 1 - eps rounds to 1 and acos' gradient blows up.
        if cosine.dtype in (torch.float16, torch.bfloat16):
            cosine = cosine.float()
        one_hot = F.one_hot(targets, self.num_classes).to(cosine.dtype)
        return self.apply_margin(cosine, one_hot) * self.s, plain


@CLASSIFIER_REGISTRY.register()
class CosSoftmax(_CosineMarginSoftmax):
    """Large-margin cosine softmax (CosFace, Wang et al. 2018): target logit ``s·(cos θ − m)``."""

    def apply_margin(self, cosine: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
        return cosine - self.m * one_hot


@CLASSIFIER_REGISTRY.register()
class ArcSoftmax(_CosineMarginSoftmax):
    """Additive angular margin softmax (ArcFace, Deng et al. 2019): target logit ``s·cos(θ + m)``."""

    def apply_margin(self, cosine: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
        # acos has an infinite derivative at ±1.
        eps = 1e-6 if cosine.dtype == torch.float64 else 1e-4
        theta = torch.acos(cosine.clamp(-1.0 + eps, 1.0 - eps))
        return torch.cos(theta + self.m * one_hot)


@CLASSIFIER_REGISTRY.register()
class CircleSoftmax(_CosineMarginSoftmax):
    """Circle-loss softmax (Sun et al. 2020).

    Target logit ``s·α_p·(cos − (1 − m))`` with ``α_p = [1 + m − cos]_+``; others ``s·α_n·(cos − m)`` with
    ``α_n = [cos + m]_+``. The weights α are treated as constants (no gradient), as in the paper.
    """

    def apply_margin(self, cosine: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
        alpha_p = torch.clamp_min(1.0 + self.m - cosine.detach(), 0.0)
        alpha_n = torch.clamp_min(cosine.detach() + self.m, 0.0)
        logits_p = alpha_p * (cosine - (1.0 - self.m))
        logits_n = alpha_n * (cosine - self.m)
        return one_hot * logits_p + (1.0 - one_hot) * logits_n


for _alias, _name in {
    "linear": "Linear",
    "arcSoftmax": "ArcSoftmax",
    "circleSoftmax": "CircleSoftmax",
    "cosSoftmax": "CosSoftmax",
}.items():
    CLASSIFIER_REGISTRY.register_alias(_alias, _name)


def build_classifier(name: str, in_features: int, num_classes: int, scale: float, margin: float) -> Linear:
    """Build the classification layer registered (or aliased) as ``name``."""
    return CLASSIFIER_REGISTRY.get(name)(in_features, num_classes, scale=scale, margin=margin)
