"""``Distiller``: a Baseline student trained with its own losses plus logit distillation from frozen teachers
(fast-reid's knowledge distillation, Hinton et al. 2015), optionally with an EMA copy of itself as a teacher.

Teachers built from KD.MODEL_CONFIG / KD.MODEL_WEIGHTS are deliberately not submodules: they stay out of
``parameters()`` (so out of the optimizer, DDP, SWA and the hooks), out of ``state_dict()`` (so student
checkpoints hold only the student, as in fast-reid) and out of ``train()``; they are reloaded from their files
when a run is resumed, which is exact because they never change. The EMA teacher does change, so it is a
submodule (``ema_teacher``) without gradients, saved in every checkpoint and restored on resume.
"""
import ast
import copy
import logging
import os
from typing import Any, Dict, List, Optional, Sequence

import torch
from torch import nn

from fastreid.config import configurable, get_cfg
from fastreid.modeling.losses import log_accuracy
from fastreid.modeling.losses.distillation import LogitDistillationLoss
from fastreid.utils.checkpoint import Checkpointer

from .baseline import Baseline, Batch
from .build import META_ARCH_REGISTRY, build_model

__all__ = ["Distiller", "build_teacher", "parse_path_list", "teacher_logits"]

logger = logging.getLogger(__name__)


def parse_path_list(value: str, key: str) -> List[str]:
    """The paths in a KD.MODEL_CONFIG / KD.MODEL_WEIGHTS value.

    Args:
        value: "" (none), one path, or a Python list / tuple literal of paths (what a YAML list becomes when
            merged, see :mod:`fastreid.config.compat`, and fast-reid's command-line form '("t.yml",)').
        key: the config key, for error messages.
    """
    text = value.strip()
    if not text:
        return []
    if text[0] not in "[(":
        return [text]
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError) as e:
        raise ValueError(f"{key} {value!r} starts like a list but is not a Python list of quoted paths "
                         f"(write e.g. '(\"teacher.yml\",)'): {e}") from e
    if not isinstance(parsed, (list, tuple)) or not all(isinstance(p, str) for p in parsed):
        raise ValueError(f"{key} {value!r} must be a path or a list of paths (strings)")
    return list(parsed)


def _check_exists(path: str, key: str) -> None:
    if "://" not in path and not os.path.isfile(path):
        raise FileNotFoundError(f"{key} names {path}, which does not exist (working directory {os.getcwd()}). "
                                f"Train the teacher first, or fix {key}.")


def build_teacher(config_file: str, weights_file: str, *, num_classes: int, device: str) -> nn.Module:
    """A frozen teacher in eval mode: the model of ``config_file`` with the weights of ``weights_file``.

    The teacher is built on fastreid's default config tree (keys added by a project are not known), with the
    student's class count and device; a Distiller config builds its Baseline student.

    Args:
        config_file: a teacher config, e.g. the ``config.yaml`` its training run wrote (KD.MODEL_CONFIG).
        weights_file: its checkpoint (KD.MODEL_WEIGHTS), including the classifier.
        num_classes: the student's MODEL.HEADS.NUM_CLASSES; the teacher's classifier must have that width.
        device: the student's MODEL.DEVICE.

    Raises:
        FileNotFoundError: a file does not exist (the message names the key and the path).
        ValueError: the teacher is not a backbone + embedding-head model, or its classifier was not loaded.
    """
    _check_exists(config_file, "KD.MODEL_CONFIG")
    _check_exists(weights_file, "KD.MODEL_WEIGHTS")
    cfg = get_cfg()
    cfg.merge_from_file(config_file)
    if cfg.MODEL.META_ARCHITECTURE == "Distiller":
        cfg.MODEL.META_ARCHITECTURE = "Baseline"
    cfg.MODEL.BACKBONE.PRETRAIN = False  # the weights file replaces any initialisation: no download
    cfg.MODEL.HEADS.NUM_CLASSES = num_classes
    cfg.MODEL.DEVICE = device
    teacher = build_model(cfg)
    heads = getattr(teacher, "heads", None)
    if not hasattr(teacher, "backbone_features") or not all(
        hasattr(heads, name) for name in ("pool_layer", "bottleneck", "classifier")
    ):
        raise ValueError(f"The teacher of {config_file} is a {type(teacher).__name__}; Distiller needs a "
                         "Baseline-style teacher (backbone and EmbeddingHead / ClasHead) for its class logits.")
    before = [p.detach().clone() for p in heads.classifier.parameters()]
    Checkpointer(teacher, save_to_disk=False, save_rng=False).load(weights_file, checkpointables=[])
    if all(torch.equal(b, p) for b, p in zip(before, heads.classifier.parameters())):
        raise ValueError(f"The classifier of the teacher in {weights_file} was not loaded: it must have the "
                         f"student's {num_classes} classes (teacher and student train on the same identities).")
    teacher.requires_grad_(False)
    logger.info("Teacher of %s loaded from %s (frozen, eval mode)", config_file, weights_file)
    return teacher.eval()


@torch.no_grad()
def teacher_logits(teacher: nn.Module, batched_inputs: Batch) -> torch.Tensor:
    """The B×K class logits (without margin) of a Baseline-style model in eval mode, with its own input
    normalisation."""
    heads = teacher.heads
    embedding = heads.bottleneck(heads.pool_layer(teacher.backbone_features(batched_inputs)))[..., 0, 0]
    return heads.classifier(embedding)[1]


@META_ARCH_REGISTRY.register()
class Distiller(Baseline):
    """A :class:`Baseline` student plus logit distillation from teachers (term ``loss_kd``).

    In eval mode it is the student alone. In training mode the loss terms are the student's configured losses
    and ``loss_kd``, the divergence between the student's class logits and each teacher's, averaged over the
    teachers. With an EMA teacher, each training forward first moves it towards the student:
    ``ema = m * ema + (1 - m) * student`` for parameters and floating-point buffers (BN statistics).

    Args:
        teachers: frozen models in eval mode (see :func:`build_teacher`); kept outside the module tree.
        distill_loss: the distillation term (see :class:`LogitDistillationLoss`).
        ema_momentum: momentum m of an EMA teacher (KD.EMA.MOMENTUM); None for none.
        student: the keyword arguments of :class:`Baseline` (backbone, heads, losses, pixel_mean, pixel_std).
    """

    @configurable
    def __init__(
        self,
        *,
        teachers: Sequence[nn.Module] = (),
        distill_loss: nn.Module,
        ema_momentum: Optional[float] = None,
        **student: Any,
    ) -> None:
        super().__init__(**student)
        if ema_momentum is not None and not 0.0 <= ema_momentum < 1.0:
            raise ValueError(f"KD.EMA.MOMENTUM must be in [0, 1), got {ema_momentum}")
        self._fixed_teachers = tuple(t.requires_grad_(False).eval() for t in teachers)
        self.distill_loss = distill_loss
        self.ema_momentum = ema_momentum
        self.ema_teacher: Optional[Baseline] = None
        if ema_momentum is not None:
            self.ema_teacher = Baseline(backbone=copy.deepcopy(self.backbone), heads=copy.deepcopy(self.heads),
                                        losses=[], pixel_mean=student["pixel_mean"], pixel_std=student["pixel_std"])
            self.ema_teacher.requires_grad_(False).eval()

    @classmethod
    def from_config(cls, cfg) -> Dict:
        args = super().from_config(cfg)
        kd = cfg.KD
        configs = parse_path_list(kd.MODEL_CONFIG, "KD.MODEL_CONFIG")
        weights = parse_path_list(kd.MODEL_WEIGHTS, "KD.MODEL_WEIGHTS")
        if len(configs) != len(weights):
            raise ValueError(f"KD.MODEL_CONFIG names {len(configs)} teacher config(s) and KD.MODEL_WEIGHTS "
                             f"{len(weights)} weight file(s): give one weight file per config.")
        if not configs and not kd.EMA.ENABLED:
            raise ValueError("MODEL.META_ARCHITECTURE Distiller has no teacher: set KD.MODEL_CONFIG and "
                             "KD.MODEL_WEIGHTS (a trained teacher's config.yaml and checkpoint), or KD.EMA.ENABLED.")
        num_classes = cfg.MODEL.HEADS.NUM_CLASSES
        if num_classes == 0:
            # An inference-only build (e.g. --eval-only): the student alone is evaluated.
            logger.info("MODEL.HEADS.NUM_CLASSES is 0: Distiller built for inference, without its teachers")
            configs, weights = [], []
        args["teachers"] = [
            build_teacher(c, w, num_classes=num_classes, device=cfg.MODEL.DEVICE) for c, w in zip(configs, weights)
        ]
        args["distill_loss"] = LogitDistillationLoss(kd.LOSS, kd.TEMPERATURE, kd.SCALE)
        args["ema_momentum"] = kd.EMA.MOMENTUM if kd.EMA.ENABLED else None
        return args

    @property
    def teachers(self) -> List[nn.Module]:
        """The fixed teachers, then the EMA teacher if any."""
        return list(self._fixed_teachers) + ([self.ema_teacher] if self.ema_teacher is not None else [])

    def train(self, mode: bool = True) -> "Distiller":
        """Set the student's mode; teachers stay in eval mode (BN running statistics, no dropout)."""
        super().train(mode)
        for teacher in self.teachers:
            teacher.eval()
        return self

    def _apply(self, fn, *args, **kwargs):
        # .to() / .cuda() / .half() reach the teachers outside the module tree too.
        for teacher in self._fixed_teachers:
            teacher._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    @torch.no_grad()
    def update_ema(self) -> None:
        """``ema = m * ema + (1 - m) * student`` for parameters and floating buffers; other buffers copied."""
        m = self.ema_momentum
        for ema_part, part in ((self.ema_teacher.backbone, self.backbone), (self.ema_teacher.heads, self.heads)):
            for ema_param, param in zip(ema_part.parameters(), part.parameters()):
                ema_param.mul_(m).add_(param.detach(), alpha=1.0 - m)
            for ema_buf, buf in zip(ema_part.buffers(), part.buffers()):
                if ema_buf.dtype.is_floating_point:
                    ema_buf.mul_(m).add_(buf, alpha=1.0 - m)
                else:
                    ema_buf.copy_(buf)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Student weights without an EMA teacher (a Baseline checkpoint, or a Distiller run without EMA):
        # the EMA teacher starts as that student instead of being reported missing.
        ema_prefix = f"{prefix}ema_teacher."
        if self.ema_teacher is not None and not any(k.startswith(ema_prefix) for k in state_dict):
            student = [k for k in state_dict if k.startswith((f"{prefix}backbone.", f"{prefix}heads."))]
            for key in student:
                state_dict[ema_prefix + key[len(prefix):]] = state_dict[key]
            if student:
                logger.info("The checkpoint has no EMA teacher: it starts as the loaded student")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, batched_inputs: Batch):
        """
        Args:
            batched_inputs: as :meth:`Baseline.forward`.

        Returns:
            Training mode: the student's ``loss_<term>`` dict plus ``loss_kd``. Eval mode: the student's B×D
            features.
        """
        if not self.training:
            return super().forward(batched_inputs)
        self.check_num_classes(getattr(self.heads, "num_classes", 1))
        # First, so that the EMA reads the student as the last step left it (weights and BN statistics); only
        # training steps move it, not forwards without gradients such as precise-BN passes.
        if self.ema_teacher is not None and torch.is_grad_enabled():
            self.update_ema()
        targets = self.targets_of(batched_inputs)
        outputs = self.heads(self.backbone_features(batched_inputs), targets)
        log_accuracy(outputs["pred_class_logits"], targets)
        losses = self.loss_terms(outputs, targets)
        logits = [teacher_logits(teacher, batched_inputs) for teacher in self.teachers]
        losses.update(self.distill_loss(outputs["pred_class_logits"], logits))
        return losses
