"""torchreid's image engines: softmax (cross-entropy) and triplet + softmax, on fastreid's losses.

torchreid's label smoothing puts ``1 - ε + ε/K`` on the true class and ``ε/K`` elsewhere (ε = 0.1); fastreid's
:func:`~fastreid.modeling.losses.cross_entropy_loss` puts ``1 - ε'`` and ``ε'/(K - 1)``, which is the same
distribution for ``ε' = ε (K - 1) / K``. torchreid's triplet loss is fastreid's batch-hard
:func:`~fastreid.modeling.losses.triplet_loss` on unnormalised features.
"""
from typing import Any, Dict, Mapping, Union

import torch
from torch import nn

from fastreid.modeling.losses import cross_entropy_loss, log_accuracy, triplet_loss

from .engine import Engine

__all__ = ["CrossEntropyLoss", "ImageSoftmaxEngine", "ImageTripletEngine", "TripletLoss"]

LABEL_SMOOTH_EPSILON = 0.1


class CrossEntropyLoss(nn.Module):
    """torchreid's cross-entropy with optional label smoothing (ε = 0.1) on B×K logits."""

    def __init__(self, num_classes: int, use_gpu: bool = True, label_smooth: bool = True) -> None:
        super().__init__()
        self.num_classes = int(num_classes)
        self.epsilon = LABEL_SMOOTH_EPSILON if label_smooth else 0.0

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        eps = self.epsilon * (self.num_classes - 1) / self.num_classes
        return cross_entropy_loss(logits, targets, eps)


class TripletLoss(nn.Module):
    """torchreid's batch-hard triplet loss with a margin, on B×D features."""

    def __init__(self, margin: float = 0.3) -> None:
        super().__init__()
        self.margin = float(margin)

    def forward(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return triplet_loss(features, targets, self.margin, norm_feat=False, hard_mining=True)


def _to_device(data: Mapping[str, Any], engine: Engine):
    images, pids = engine.parse_data_for_train(data)
    device = next(engine.model.parameters()).device
    return images.to(device, non_blocking=True), pids.to(device, non_blocking=True)


def _logits(outputs) -> torch.Tensor:
    return outputs[0] if isinstance(outputs, (tuple, list)) else outputs


class ImageSoftmaxEngine(Engine):
    """torchreid's softmax engine for image re-id: cross-entropy on the model's logits (term ``loss_x``).

    Args:
        datamanager, use_gpu, amp: see :class:`~fastreid.torchreid.engine.Engine`.
        model: a torchreid-style model (logits in training mode, features in eval mode).
        optimizer: its optimizer.
        scheduler: stepped once per epoch; None keeps the learning rate.
        label_smooth: label smoothing with ε = 0.1.
    """

    def __init__(self, datamanager, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler=None,
                 use_gpu: bool = True, label_smooth: bool = True, *, amp: Union[bool, str] = False) -> None:
        super().__init__(datamanager, use_gpu, amp=amp)
        self.register_model("model", model, optimizer, scheduler)
        self.criterion = CrossEntropyLoss(datamanager.num_train_pids, self.use_gpu, label_smooth)

    def compute_losses(self, data: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        images, pids = _to_device(data, self)
        outputs = self.model(images)
        log_accuracy(_logits(outputs).detach(), pids, name="acc")
        return {"loss_x": self.compute_loss(self.criterion, outputs, pids)}


class ImageTripletEngine(Engine):
    """torchreid's triplet engine for image re-id: ``weight_t`` × triplet (``loss_t``) + ``weight_x`` ×
    cross-entropy (``loss_x``); the model returns ``(logits, features)`` in training mode.

    Args:
        datamanager, model, optimizer, scheduler, use_gpu, label_smooth, amp: see :class:`ImageSoftmaxEngine`.
        margin: triplet margin.
        weight_t, weight_x: weights of the triplet and cross-entropy terms.
    """

    def __init__(self, datamanager, model: nn.Module, optimizer: torch.optim.Optimizer, margin: float = 0.3,
                 weight_t: float = 1, weight_x: float = 1, scheduler=None, use_gpu: bool = True,
                 label_smooth: bool = True, *, amp: Union[bool, str] = False) -> None:
        super().__init__(datamanager, use_gpu, amp=amp)
        if weight_t < 0 or weight_x < 0 or weight_t + weight_x <= 0:
            raise ValueError(f"weight_t and weight_x must be >= 0 with a positive sum, got {weight_t}, {weight_x}")
        self.register_model("model", model, optimizer, scheduler)
        self.weight_t, self.weight_x = float(weight_t), float(weight_x)
        self.criterion_t = TripletLoss(margin=margin)
        self.criterion_x = CrossEntropyLoss(datamanager.num_train_pids, self.use_gpu, label_smooth)

    def compute_losses(self, data: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        images, pids = _to_device(data, self)
        outputs = self.model(images)
        if not (isinstance(outputs, (tuple, list)) and len(outputs) == 2):
            raise TypeError("ImageTripletEngine needs a model returning (logits, features) in training mode: "
                            "build it with loss='triplet'")
        logits, features = outputs
        losses: Dict[str, torch.Tensor] = {}
        if self.weight_t > 0:
            losses["loss_t"] = self.weight_t * self.compute_loss(self.criterion_t, features, pids)
        if self.weight_x > 0:
            losses["loss_x"] = self.weight_x * self.compute_loss(self.criterion_x, logits, pids)
        log_accuracy(_logits(logits).detach(), pids, name="acc")
        return losses
