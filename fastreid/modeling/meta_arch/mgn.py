"""``MGN``: Multiple Granularity Network (Wang et al. 2018), with fast-reid's layout of branches and heads."""
import copy
from typing import Dict, List, Sequence, Union

import torch
from torch import nn

from fastreid.config import configurable
from fastreid.modeling.backbones import build_backbone
from fastreid.modeling.heads import build_heads
from fastreid.modeling.losses import build_losses, log_accuracy

from .baseline import Batch, ReIDMetaArch
from .build import META_ARCH_REGISTRY

__all__ = ["MGN"]


def _without_stride(stage: nn.Module) -> nn.Module:
    """A copy of ``stage`` computing the same blocks at stride 1 (the part branches keep full resolution)."""
    stage = copy.deepcopy(stage)
    for m in stage.modules():
        if isinstance(m, nn.Conv2d) and m.stride != (1, 1):
            m.stride = (1, 1)
        elif isinstance(m, nn.AvgPool2d) and m.stride not in (1, (1, 1)):
            if m.kernel_size == m.stride:  # average-pool downsampling of a shortcut: drop it
                m.kernel_size = 1
            m.stride = 1
    return stage


@META_ARCH_REGISTRY.register()
class MGN(ReIDMetaArch):
    """A shared ResNet stem up to ``layer3[0]``, then one global and several part branches.

    Branch ``b<i>`` (i = 1, 2, 3) owns a copy of the rest of ``layer3`` and of ``layer4`` (stride 1 in the part
    branches); its map has a global head ``b<i>`` and, when cut into ``parts`` horizontal stripes, one head per
    stripe ``b<i><j>``. Classification losses apply to every head and metric losses to each branch's global
    features; each group is averaged over its heads so the configured SCALEs keep their meaning. In eval mode
    the features of all heads are concatenated: globals first, then the stripes (fast-reid's order).

    Args:
        backbone: the shared stem, B×3×H×W → B×C×h×w.
        branches: one module per branch, each mapping the stem output to B×C'×h'×w'.
        heads: head per name "b<i>" and "b<i><j>".
        num_parts: stripes per branch (1 = global only).
        losses, pixel_mean, pixel_std: see :class:`ReIDMetaArch`.
    """

    @configurable
    def __init__(
        self,
        *,
        backbone: nn.Module,
        branches: Sequence[nn.Module],
        heads: Dict[str, nn.Module],
        num_parts: Sequence[int],
        losses: Sequence[nn.Module],
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
    ) -> None:
        super().__init__(losses=losses, pixel_mean=pixel_mean, pixel_std=pixel_std)
        if len(branches) != len(num_parts):
            raise ValueError(f"{len(branches)} branches but {len(num_parts)} entries in num_parts")
        self.backbone = backbone
        self.num_parts = tuple(num_parts)
        # Attribute names b1, b2, ... as fast-reid, so MODEL.FREEZE_LAYERS [backbone, b1, b2, b3] applies.
        for i, branch in enumerate(branches, 1):
            self.add_module(f"b{i}", branch)
        self.global_names = [f"b{i}" for i in range(1, len(num_parts) + 1)]
        self.part_names = [f"b{i}{j}" for i, p in enumerate(num_parts, 1) if p > 1 for j in range(1, p + 1)]
        missing = set(self.global_names + self.part_names) - set(heads)
        if missing:
            raise ValueError(f"MGN needs heads named {sorted(missing)}")
        self.heads = nn.ModuleDict({k: heads[k] for k in self.global_names + self.part_names})

    @classmethod
    def from_config(cls, cfg, num_parts: Sequence[int] = (1, 2, 3)) -> Dict:
        resnet = build_backbone(cfg)
        for attr in ("stem_modules", "layer1", "layer2", "layer3", "layer4"):
            if not hasattr(resnet, attr):
                raise TypeError(f"MGN needs a ResNet-style backbone with `{attr}`; got {type(resnet).__name__}")
        if any(len(getattr(resnet, f"NL_{i}", ())) for i in range(1, 5)):
            raise ValueError("MGN has no place for non-local blocks; set MODEL.BACKBONE.WITH_NL False")
        stem = nn.Sequential(*resnet.stem_modules(), resnet.layer1, resnet.layer2, resnet.layer3[0])
        res_conv4 = nn.Sequential(*resnet.layer3[1:])
        part_conv5 = _without_stride(resnet.layer4)
        branches = [
            nn.Sequential(copy.deepcopy(res_conv4), copy.deepcopy(resnet.layer4 if p == 1 else part_conv5))
            for p in num_parts
        ]
        names = [f"b{i}" for i in range(1, len(num_parts) + 1)]
        names += [f"b{i}{j}" for i, p in enumerate(num_parts, 1) if p > 1 for j in range(1, p + 1)]
        return {
            "backbone": stem,
            "branches": branches,
            "heads": {name: build_heads(cfg, resnet.out_channels) for name in names},
            "num_parts": num_parts,
            "losses": build_losses(cfg),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
        }

    def _branch_maps(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        shared = self.backbone(images)
        maps = {}
        for name, parts in zip(self.global_names, self.num_parts):
            fmap = getattr(self, name)(shared)
            maps[name] = fmap
            if parts > 1:
                if fmap.size(2) < parts:
                    raise ValueError(f"Feature map height {fmap.size(2)} is too small for {parts} stripes")
                # torch.chunk as fast-reid: stripes of ceil(h / parts) rows, the last one shorter when h is not
                # a multiple (its checkpoints' features depend on it). For a few heights (e.g. 4 rows in 3) chunk
                # returns fewer stripes and fast-reid fails; there, near-equal stripes (tensor_split) instead.
                stripes = torch.chunk(fmap, parts, dim=2)
                if len(stripes) != parts:
                    stripes = torch.tensor_split(fmap, parts, dim=2)
                for j, stripe in enumerate(stripes, 1):
                    maps[f"{name}{j}"] = stripe
        return maps

    def forward(self, batched_inputs: Batch) -> Union[Dict[str, torch.Tensor], torch.Tensor]:
        """
        Args:
            batched_inputs: {"images": B×3×H×W float 0-255, "targets": B long (training only)}, or in eval
                mode just the image tensor.

        Returns:
            Training mode: {"loss_<term>_<head>": scalar}. Eval mode: B×(8·D) concatenated features.
        """
        maps = self._branch_maps(self.preprocess_image(batched_inputs))
        names: List[str] = self.global_names + self.part_names
        if not self.training:
            return torch.cat([self.heads[k](maps[k]) for k in names], dim=1)
        self.check_num_classes(getattr(self.heads[names[0]], "num_classes", 1))
        targets = self.targets_of(batched_inputs)
        outputs = {k: self.heads[k](maps[k], targets) for k in names}
        log_accuracy(outputs[names[0]]["pred_class_logits"], targets)
        cls_losses = [loss for loss in self.losses if loss.input_key != "features"]
        metric_losses = [loss for loss in self.losses if loss.input_key == "features"]
        terms = {}
        for k in names:
            terms.update(self.loss_terms(outputs[k], targets, cls_losses, f"_{k}", 1.0 / len(names)))
        for k in self.global_names:
            terms.update(self.loss_terms(outputs[k], targets, metric_losses, f"_{k}", 1.0 / len(self.global_names)))
        return terms
