"""``MoCo``: a Baseline plus a momentum encoder and a memory queue of labelled keys (He et al. 2020).

fast-reid's MoCo queues the query features themselves; this one follows the paper and queues the features of
a momentum (EMA) copy of the backbone and head, with their identity labels, and adds fast-reid's pairwise
CosFace loss of each query against the keys (``loss_mb``).
"""
import copy
import logging
from typing import Any, Dict

import torch
import torch.nn.functional as F
from torch import nn

from fastreid.config import configurable
from fastreid.modeling.losses.memory import memory_cosface_loss
from fastreid.utils import comm

from .baseline import Baseline, Batch
from .build import META_ARCH_REGISTRY

__all__ = ["MoCo"]

logger = logging.getLogger(__name__)


@META_ARCH_REGISTRY.register()
class MoCo(Baseline):
    """A :class:`Baseline` trained with an extra contrastive loss against a queue of momentum features.

    Each training step (a forward with gradients enabled, in training mode):

    1. the momentum encoder (a frozen copy of ``backbone`` and ``heads``) moves towards the trained one,
       ``theta_k <- m * theta_k + (1 - m) * theta_q``; at the first step it is set equal to it, so that weights
       loaded after construction (MODEL.WEIGHTS) are its starting point too;
    2. it encodes the batch into L2-normalised keys (the head's training "features");
    3. ``loss_mb = scale * memory_cosface_loss`` of the batch's "features" against the batch's keys and the
       queue, each query's own key left out (:func:`fastreid.modeling.losses.memory.memory_cosface_loss`);
    4. the keys and their identities, gathered from every process, overwrite the oldest entries of the queue,
       a ring of ``queue_size`` slots.

    A forward without gradients (e.g. precise BN) computes the loss but changes neither the momentum encoder
    nor the queue. The queue, its labels, the ring pointer and the momentum encoder are buffers and frozen
    parameters of the module, so checkpoints save them and a resumed run restores them; a Baseline checkpoint
    (without them) loads too, emptying the queue. In eval mode the model is the Baseline: the momentum encoder
    is not used.

    Args:
        baseline: ``backbone``, ``heads``, ``losses``, ``pixel_mean``, ``pixel_std`` of :class:`Baseline`.
        feat_dim: width D of the head's training "features".
        queue_size: slots of the queue (MODEL.QUEUE_SIZE); at least the number of images per step over all
            processes.
        momentum: EMA momentum ``m`` of the momentum encoder (MODEL.MOCO.MOMENTUM), in [0, 1].
        margin, gamma: of the memory loss (MODEL.MOCO.MARGIN, MODEL.MOCO.GAMMA).
        scale: weight of ``loss_mb`` (MODEL.MOCO.SCALE).
    """

    @configurable
    def __init__(
        self,
        *,
        feat_dim: int,
        queue_size: int,
        momentum: float = 0.999,
        margin: float = 0.25,
        gamma: float = 32.0,
        scale: float = 1.0,
        **baseline: Any,
    ) -> None:
        super().__init__(**baseline)
        if queue_size < 1:
            raise ValueError(f"MODEL.QUEUE_SIZE must be a positive number of queued features, got {queue_size}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"MODEL.MOCO.MOMENTUM must be in [0, 1], got {momentum}")
        self.momentum = float(momentum)
        self.margin = float(margin)
        self.gamma = float(gamma)
        self.scale = float(scale)
        self.momentum_encoder = copy.deepcopy(nn.ModuleDict({"backbone": self.backbone, "heads": self.heads}))
        for p in self.momentum_encoder.parameters():
            p.requires_grad_(False)
        self.register_buffer("queue", torch.zeros(queue_size, feat_dim))
        self.register_buffer("queue_labels", torch.full((queue_size,), -1, dtype=torch.long))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        # False until the first training step copies the trained weights into the momentum encoder.
        self.register_buffer("momentum_ready", torch.zeros((), dtype=torch.bool))

    @classmethod
    def from_config(cls, cfg) -> Dict:
        args = super().from_config(cfg)
        channels = args["backbone"].out_channels
        heads_cfg = cfg.MODEL.HEADS
        # The head's training "features": the pooled map before the neck, or the (reduced) post-neck embedding.
        feat_dim = channels if heads_cfg.NECK_FEAT == "before" else (heads_cfg.EMBEDDING_DIM or channels)
        moco = cfg.MODEL.MOCO
        return {
            **args,
            "feat_dim": feat_dim,
            "queue_size": cfg.MODEL.QUEUE_SIZE,
            "momentum": moco.MOMENTUM,
            "margin": moco.MARGIN,
            "gamma": moco.GAMMA,
            "scale": moco.SCALE,
        }

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A Baseline checkpoint (MODEL.WEIGHTS to fine-tune from) has no momentum encoder or queue: the queue is
        # emptied and the first training step starts the momentum encoder from the loaded weights.
        keys = [k for k in state_dict if k.startswith(prefix)]
        encoder = f"{prefix}momentum_encoder."
        if any(k.startswith(f"{prefix}backbone.") for k in keys) and not any(k.startswith(encoder) for k in keys):
            state_dict.update(self.momentum_encoder.state_dict(prefix=encoder))
            state_dict.update({
                f"{prefix}queue": torch.zeros_like(self.queue),
                f"{prefix}queue_labels": torch.full_like(self.queue_labels, -1),
                f"{prefix}queue_ptr": torch.zeros_like(self.queue_ptr),
                f"{prefix}momentum_ready": torch.zeros_like(self.momentum_ready),
            })
            logger.info("The checkpoint has no MoCo momentum encoder or queue: the queue starts empty and the "
                        "momentum encoder as the loaded weights")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def training_losses(
        self, batched_inputs: Batch, outputs: Dict[str, torch.Tensor], targets: torch.Tensor
    ) -> Dict[str, torch.Tensor]:
        """The Baseline's loss terms plus ``loss_mb`` (see the class description)."""
        terms = super().training_losses(batched_inputs, outputs, targets)
        images = self.preprocess_image(batched_inputs)
        terms["loss_mb"] = self.scale * self.memory_loss(images, outputs["features"], targets)
        return terms

    def memory_loss(self, images: torch.Tensor, queries: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Steps 1-4 of the class description; returns the unweighted memory loss.

        Args:
            images: B×3×H×W normalised images.
            queries: B×D training "features" of the trained head.
            targets: B identity labels.
        """
        update = torch.is_grad_enabled()
        with torch.no_grad():
            if update:
                self.momentum_update()
            keys = F.normalize(self.encode_keys(images, targets).to(self.queue.dtype), dim=1)
        if keys.shape[1] != self.queue.shape[1]:
            raise ValueError(
                f"MoCo's queue holds {self.queue.shape[1]}-d features but the head gives {keys.shape[1]}-d ones: "
                "pass feat_dim as the width of the head's training 'features'"
            )
        batch = len(targets)
        bank = torch.cat([keys, self.queue])
        labels = torch.cat([targets, self.queue_labels])
        own_key = torch.zeros(batch, len(bank), dtype=torch.bool, device=keys.device)
        own_key[:, :batch] = torch.eye(batch, dtype=torch.bool, device=keys.device)
        loss = memory_cosface_loss(queries, targets, bank, labels, self.margin, self.gamma, exclude=own_key)
        if update:
            self.enqueue(keys, targets)
        return loss

    @torch.no_grad()
    def encode_keys(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The momentum encoder's B×D training "features" of normalised images (not normalised)."""
        encoder = self.momentum_encoder
        return encoder["heads"](encoder["backbone"](images), targets)["features"]

    @torch.no_grad()
    def momentum_update(self) -> None:
        """Move the momentum encoder towards the trained backbone and head (an exact copy the first time)."""
        trained = dict(self.backbone.named_parameters(prefix="backbone"))
        trained.update(self.heads.named_parameters(prefix="heads"))
        ready = bool(self.momentum_ready)
        for name, k in self.momentum_encoder.named_parameters():
            q = trained[name]
            if ready:
                k.mul_(self.momentum).add_(q.detach(), alpha=1.0 - self.momentum)
            else:
                k.copy_(q.detach())
        self.momentum_ready.fill_(True)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, labels: torch.Tensor) -> None:
        """Write the keys of every process, in rank order, over the oldest slots of the ring.

        Args:
            keys: B×D keys of this process.
            labels: B identity labels.
        """
        keys, labels = comm.all_gather_tensor(keys), comm.all_gather_tensor(labels)
        size = len(self.queue)
        if len(keys) > size:
            raise ValueError(
                f"MODEL.QUEUE_SIZE ({size}) is smaller than the {len(keys)} features queued per step "
                f"(SOLVER.IMS_PER_BATCH over all processes): raise MODEL.QUEUE_SIZE to at least {len(keys)}"
            )
        slots = (self.queue_ptr + torch.arange(len(keys), device=self.queue.device)) % size
        self.queue[slots] = keys
        self.queue_labels[slots] = labels
        self.queue_ptr.fill_((int(self.queue_ptr) + len(keys)) % size)
