"""``DML``: two re-id networks trained together, each also mimicking the other's predictions."""
from typing import Dict, Mapping, Union

import torch
import torch.nn.functional as F
from torch import nn

from fastreid.config import configurable
from fastreid.modeling import META_ARCH_REGISTRY
from fastreid.modeling.losses import log_accuracy
from fastreid.modeling.meta_arch import Baseline

from .losses import mutual_kl_loss

__all__ = ["DML"]

DEPLOY_CHOICES = ("net1", "net2", "both")


@META_ARCH_REGISTRY.register()
class DML(nn.Module):
    """Deep mutual learning (Zhang et al., CVPR 2018), as torchreid's DML project trains it.

    Each network gets the configured losses (MODEL.LOSSES) on its own outputs plus ``weight`` times
    :func:`~dml.mutual_kl_loss` towards the other's detached predictions. Every term involves one network only,
    so one optimizer over both (what the trainer builds) gives each the gradients of its own objective.

    Training returns ``loss_<term>_net1`` and ``loss_<term>_net2`` for every loss, including ``loss_mutual``;
    eval mode returns the features of ``deploy``.

    Args:
        net1, net2: the networks; training mode maps a batch to their head outputs, eval mode to B×D features.
        weight: weight of each mimicry term.
        temperature: softmax temperature of the mimicry terms.
        deploy: test features: "net1", "net2" or "both" (each L2-normalised, then concatenated, so neither
            dominates by its scale).
    """

    @configurable
    def __init__(self, *, net1: Baseline, net2: Baseline, weight: float = 1.0, temperature: float = 1.0,
                 deploy: str = "net1") -> None:
        super().__init__()
        if deploy not in DEPLOY_CHOICES:
            raise ValueError(f"MODEL.DML.DEPLOY must be one of {DEPLOY_CHOICES}, got {deploy!r}")
        self.net1, self.net2 = net1, net2
        self.weight, self.temperature, self.deploy = weight, temperature, deploy

    @classmethod
    def from_config(cls, cfg) -> Dict:
        cfg2 = cfg
        if cfg.MODEL.DML.NET2_OPTS:
            cfg2 = cfg.clone()
            cfg2.defrost()
            cfg2.merge_from_list(list(cfg.MODEL.DML.NET2_OPTS))
        return {"net1": Baseline(cfg), "net2": Baseline(cfg2), "weight": cfg.MODEL.DML.WEIGHT,
                "temperature": cfg.MODEL.DML.TEMPERATURE, "deploy": cfg.MODEL.DML.DEPLOY}

    @property
    def device(self) -> torch.device:
        return self.net1.device

    def use_channels_last(self) -> "DML":
        """Both networks in channels-last memory format (MODEL.CHANNELS_LAST)."""
        self.net1.use_channels_last()
        self.net2.use_channels_last()
        return self

    def forward(self, batched_inputs: Union[Mapping[str, torch.Tensor], torch.Tensor]):
        """
        Args:
            batched_inputs: {"images": B×3×H×W float 0-255, "targets": B long (training only)}, or in eval
                mode the image tensor.

        Returns:
            Training mode: the loss terms of both networks (see the class docstring). Eval mode: B×D features
            (B×(D1 + D2) with deploy "both").
        """
        if not self.training:
            if self.deploy != "both":
                return getattr(self, self.deploy)(batched_inputs)
            return torch.cat([F.normalize(net(batched_inputs), dim=1) for net in (self.net1, self.net2)], dim=1)
        targets = self.net1.targets_of(batched_inputs)
        outputs = {}
        for name in ("net1", "net2"):
            net = getattr(self, name)
            net.check_num_classes(getattr(net.heads, "num_classes", 1))
            outputs[name] = net.heads(net.backbone_features(batched_inputs), targets)
            log_accuracy(outputs[name]["pred_class_logits"], targets, name=f"cls_accuracy_{name}")
        terms = {}
        for name, peer in (("net1", "net2"), ("net2", "net1")):
            net = getattr(self, name)
            terms.update(net.loss_terms(outputs[name], targets, suffix=f"_{name}"))
            mimicry = mutual_kl_loss(outputs[name]["pred_class_logits"], outputs[peer]["pred_class_logits"],
                                     self.temperature)
            terms[f"loss_mutual_{name}"] = self.weight * mimicry
        return terms
