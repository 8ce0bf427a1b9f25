"""``DefaultTrainer``: the standard training run, built from a config.

Every piece is built (or checked) by an overridable method (``build_model``, ``build_optimizer``,
``build_lr_scheduler``, ``build_train_loader``, ``check_datasets``, ``build_test_loader``, ``build_evaluator``,
``build_hooks``, ``build_writers``, ``find_unused_parameters``), so a project changes one piece by subclassing.
"""
import logging
import os
import warnings
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional

import torch
from torch import nn

from fastreid.config import CfgNode
from fastreid.data import build_reid_test_loader, build_reid_train_loader, build_train_set, check_datasets
from fastreid.data.transforms import build_transforms
from fastreid.evaluation import ReidEvaluator, inference_on_dataset, print_csv_format
from fastreid.modeling import build_model
from fastreid.solver import build_grad_clipper, build_lr_scheduler, build_optimizer
from fastreid.utils import comm
from fastreid.utils.checkpoint import Checkpointer, load_inference_weights
from fastreid.utils.events import CommonMetricPrinter, EventWriter, JSONWriter, TensorboardXWriter
from fastreid.utils.file_io import PathManager
from fastreid.utils.precision import precision_from_config, share_bf16_check

from . import hooks
from .compilation import compile_model
from .ddp import create_ddp_model, unwrap_model
from .defaults import save_config
from .swa import SWA
from .train_loop import TrainerBase, build_step

__all__ = ["DefaultTrainer"]

logger = logging.getLogger(__name__)


class DefaultTrainer(TrainerBase):
    """Builds model, data, optimizer, schedule, checkpointer and hooks from ``cfg`` and trains.

    Example::

        trainer = DefaultTrainer(cfg)
        trainer.resume_or_load(resume=args.resume)
        trainer.train()

    or, what ``tools/train_net.py`` does, ``DefaultTrainer.run(cfg, eval_only=..., resume=...)``. Logging is
    set up by :func:`~fastreid.engine.default_setup`, not here.

    Hooks are :meth:`build_hooks` followed by a :class:`~fastreid.engine.hooks.PeriodicWriter` of
    :meth:`build_writers` (main process), which the trainer appends last so that it writes what every other
    hook stored in the same step.

    Attributes:
        cfg: the run's config (MODEL.HEADS.NUM_CLASSES filled in from the training set when it is 0); the
            main process writes it to ``OUTPUT_DIR/config.yaml`` and every checkpoint records it (``"config"``,
            YAML text, and ``"num_classes"``).
        model: the model (DDP-wrapped with several processes; :func:`~fastreid.engine.unwrap_model` unwraps).
        optimizer, scheduler: the optimizer and the per-iteration LR scheduler.
        data_loader: the training loader; its ``state_dict()`` (sampler seed and position) is checkpointed.
        checkpointer: saves to OUTPUT_DIR; model, optimizer, scheduler, trainer state (hooks, grad scaler,
            data loader position) and RNG state.
        iters_per_epoch: training images // SOLVER.IMS_PER_BATCH.
    """

    def __init__(self, cfg: CfgNode) -> None:
        super().__init__()
        data_loader = self.build_train_loader(cfg)
        # Every dataset of the run, checked on every rank before any training: a broken test set would
        # otherwise surface only at the first evaluation, epochs later.
        self.check_datasets(cfg, data_loader.dataset)
        cfg = self.auto_num_classes(cfg, data_loader.dataset.num_classes)
        self.cfg = cfg
        if comm.is_main_process() and cfg.OUTPUT_DIR:
            # default_setup wrote the config before the class count was known; this is the one to reload.
            PathManager.mkdirs(cfg.OUTPUT_DIR)
            save_config(cfg, os.path.join(cfg.OUTPUT_DIR, "config.yaml"))

        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        if cfg.MODEL.COMPILE:
            compile_model(model)
        model = create_ddp_model(model, find_unused_parameters=self.find_unused_parameters(cfg, model))
        # MODEL.PRECISION: float32 steps plainly, bf16/fp16 under autocast (fp16 with a gradient scaler).
        share_bf16_check(cfg.MODEL.PRECISION, cfg.MODEL.DEVICE)
        self._trainer = build_step(model, data_loader, optimizer, precision=precision_from_config(cfg),
                                   grad_clipper=build_grad_clipper(cfg))

        self.iters_per_epoch = self.compute_iters_per_epoch(cfg, len(data_loader.dataset))
        self.scheduler = self.build_lr_scheduler(cfg, optimizer, self.iters_per_epoch)
        self.checkpointer = Checkpointer(
            unwrap_model(model), cfg.OUTPUT_DIR, optimizer=optimizer, scheduler=self.scheduler, trainer=self,
            partial=cfg.MODEL.WEIGHTS_PARTIAL,
            metadata={"config": cfg.dump(), "num_classes": cfg.MODEL.HEADS.NUM_CLASSES},
        )
        self.start_epoch = 0
        self.start_iter: Optional[int] = None
        self._last_eval_results: Optional[Mapping[str, Any]] = None
        self.max_epoch = cfg.SOLVER.MAX_EPOCH
        self.register_hooks(self.build_hooks())
        if comm.is_main_process():
            self.register_hooks([hooks.PeriodicWriter(self.build_writers(), period=cfg.SOLVER.LOG_PERIOD)])

    # ------------------------------------------------------------------------------------------------
    # running
    # ------------------------------------------------------------------------------------------------
    @property
    def model(self) -> nn.Module:
        return self._trainer.model

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self._trainer.optimizer

    @property
    def data_loader(self):
        return self._trainer.data_loader

    def resume_or_load(self, resume: bool = True) -> None:
        """Resume from OUTPUT_DIR's ``last_checkpoint`` when ``resume`` and one exists, else load MODEL.WEIGHTS.

        Resuming restores model, optimizer, schedule, grad scaler, hook state (best metric), RNG state and the
        data loader's position, so training continues as if never interrupted. A fast-reid checkpoint (which
        records only the epoch it completed) resumes at the next epoch with its weights and classifier, the
        learning-rate schedule moved to that point, and a fresh optimizer state. Loading weights without
        resuming (fine-tuning) keeps a fresh optimizer and skips parameters of another shape, such as a
        classifier trained for another number of identities.
        """
        if resume and not self.checkpointer.has_checkpoint():
            logger.info("--resume: no checkpoint in %s (no last_checkpoint file) yet, so training starts from %s.",
                        self.cfg.OUTPUT_DIR, self.cfg.MODEL.WEIGHTS or "scratch")
        checkpoint = self.checkpointer.resume_or_load(self.cfg.MODEL.WEIGHTS, resume=resume)
        if resume and self.checkpointer.has_checkpoint():
            if "iteration" not in checkpoint and "fast_reid_epoch" in checkpoint:
                self.start_iter = (int(checkpoint["fast_reid_epoch"]) + 1) * self.iters_per_epoch
                self._advance_schedule(self.start_iter)
            else:
                self.start_iter = checkpoint.get("iteration", -1) + 1
            self.start_epoch = self.start_iter // self.iters_per_epoch
            logger.info("Resuming at epoch %d, iteration %d", self.start_epoch, self.start_iter)

    def _advance_schedule(self, iterations: int) -> None:
        # The checkpoint holds no schedule state of ours: step it as the skipped iterations would have.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
            for _ in range(iterations):
                self.scheduler.step()

    def train(self) -> Optional[Mapping[str, Any]]:
        """Train from ``start_epoch`` to SOLVER.MAX_EPOCH; return the last evaluation results (main process)."""
        try:
            super().train(self.start_epoch, self.max_epoch, self.iters_per_epoch, start_iter=self.start_iter)
        finally:
            self._trainer.close()
        return self._last_eval_results if comm.is_main_process() else None

    def run_step(self) -> None:
        self._trainer.iter = self.iter
        self._trainer.epoch = self.epoch
        self._trainer.run_step()

    def state_dict(self) -> Dict[str, Any]:
        state = super().state_dict()
        state["inner"] = self._trainer.state_dict()
        if hasattr(self.data_loader, "state_dict"):
            state["data_loader"] = self.data_loader.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._trainer.load_state_dict(state.get("inner", {}))
        if "data_loader" in state and hasattr(self.data_loader, "load_state_dict"):
            self.data_loader.load_state_dict(state["data_loader"])
            self._trainer.reset_data_loader()
        else:
            logger.warning("The checkpoint holds no data loader position: training resumes on a new stream of "
                           "batches (the weights are restored exactly, the order of batches is not).")

    # ------------------------------------------------------------------------------------------------
    # builders (override in a subclass to change one piece)
    # ------------------------------------------------------------------------------------------------
    @classmethod
    def build_model(cls, cfg: CfgNode) -> nn.Module:
        """The model of ``cfg`` (``fastreid.modeling.build_model``), on MODEL.DEVICE and not yet DDP-wrapped.

        Override to build or modify the model another way; also used by :meth:`test_weights`.
        """
        model = build_model(cfg)
        logger.debug("Model:\n%s", model)
        return model

    @classmethod
    def build_optimizer(cls, cfg: CfgNode, model: nn.Module) -> torch.optim.Optimizer:
        """The optimizer of SOLVER.* over ``model``'s parameters. Override for other parameter groups."""
        return build_optimizer(cfg, model)

    @classmethod
    def build_lr_scheduler(cls, cfg: CfgNode, optimizer: torch.optim.Optimizer, iters_per_epoch: int):
        """The learning-rate scheduler, stepped once per iteration by the LRScheduler hook. Override to
        return another ``torch.optim.lr_scheduler.LRScheduler``."""
        return build_lr_scheduler(cfg, optimizer, iters_per_epoch)

    @classmethod
    def build_train_loader(cls, cfg: CfgNode):
        """The infinite training loader of DATASETS.NAMES. Override to return another iterable of batches
        whose ``dataset`` has ``num_classes``; with ``state_dict()`` / ``load_state_dict()`` (as
        :class:`~fastreid.data.TrainDataLoader` has) a resume continues its stream exactly."""
        logger.info("Preparing the training data")
        return build_reid_train_loader(cfg)

    @classmethod
    def check_datasets(cls, cfg: CfgNode, train_set) -> None:
        """Fail before training when a dataset of DATASETS.NAMES or DATASETS.TESTS cannot be used; by default
        :func:`fastreid.data.check_datasets` (re-id test sets need a query with a valid match). Override along
        with :meth:`build_test_loader` and :meth:`build_evaluator` for test sets of another kind.

        Args:
            cfg: the run's config.
            train_set: the training set of :meth:`build_train_loader` (``data_loader.dataset``).
        """
        check_datasets(cfg, train_set=train_set)

    @classmethod
    def build_test_loader(cls, cfg: CfgNode, dataset_name: str):
        """``(loader, num_query)`` of the test set ``dataset_name``. Override for another test loader."""
        return build_reid_test_loader(cfg, dataset_name=dataset_name)

    @classmethod
    def build_evaluator(cls, cfg: CfgNode, dataset_name: str, num_query: int, output_dir: Optional[str] = None):
        """The evaluator of ``dataset_name`` (a :class:`~fastreid.evaluation.DatasetEvaluator`). Override to
        evaluate another way."""
        return ReidEvaluator(cfg, num_query, output_dir)

    @classmethod
    def build_precise_bn_loader(cls, cfg: CfgNode):
        """The training batches of TEST.PRECISE_BN.DATASET that precise BN and SWA recompute statistics on."""
        train_set = build_train_set(
            cfg, names=[cfg.TEST.PRECISE_BN.DATASET], transform=build_transforms(cfg, is_train=True)
        )
        return build_reid_train_loader(cfg, train_set=train_set)

    @classmethod
    def find_unused_parameters(cls, cfg: CfgNode, model: nn.Module) -> bool:
        """Whether DDP must look for parameters without a gradient every step (costly, so only when needed).

        True when layers are frozen for a while (SOLVER.FREEZE_ITERS with MODEL.FREEZE_LAYERS, or
        SOLVER.FREEZE_FC_ITERS), or when the model's classifier feeds no loss (no loss reads the logits).
        Override when a custom model leaves other parameters unused.
        """
        freezes = (cfg.SOLVER.FREEZE_ITERS > 0 and any(cfg.MODEL.FREEZE_LAYERS)) or cfg.SOLVER.FREEZE_FC_ITERS > 0
        losses = getattr(model, "losses", None)
        classifier_unused = losses is not None and not any(
            getattr(loss, "input_key", None) == "cls_outputs" for loss in losses)
        return bool(freezes or classifier_unused)

    @staticmethod
    def compute_iters_per_epoch(cfg: CfgNode, num_train_images: int) -> int:
        """Iterations in one epoch: training images // SOLVER.IMS_PER_BATCH (at least one)."""
        return max(1, num_train_images // cfg.SOLVER.IMS_PER_BATCH)

    @staticmethod
    def auto_num_classes(cfg: CfgNode, num_classes: int) -> CfgNode:
        """Fill MODEL.HEADS.NUM_CLASSES from the training set when it is 0; returns a frozen copy."""
        cfg = cfg.clone()
        cfg.defrost()
        if cfg.MODEL.HEADS.NUM_CLASSES == 0:
            cfg.MODEL.HEADS.NUM_CLASSES = num_classes
            logger.info("MODEL.HEADS.NUM_CLASSES set to %d from the training set", num_classes)
        elif cfg.MODEL.HEADS.NUM_CLASSES != num_classes:
            logger.warning(
                "MODEL.HEADS.NUM_CLASSES is %d but the training set has %d identities",
                cfg.MODEL.HEADS.NUM_CLASSES, num_classes,
            )
        cfg.freeze()
        return cfg

    def build_writers(self) -> List[EventWriter]:
        """Console (with ETA), ``metrics.json`` and tensorboard event writers, run on the main process by a
        PeriodicWriter that the trainer appends after all hooks. Override to add or replace writers."""
        output_dir = self.cfg.OUTPUT_DIR
        PathManager.mkdirs(output_dir)
        return [
            CommonMetricPrinter(self.max_epoch * self.iters_per_epoch),
            JSONWriter(os.path.join(output_dir, "metrics.json")),
            TensorboardXWriter(output_dir),
        ]

    def build_hooks(self) -> List[hooks.HookBase]:
        """The training hooks, in the order they run: timer, LR schedule, layer freezing, SWA, precise BN,
        evaluation, best and periodic checkpoints.

        Override to add hooks (``return super().build_hooks() + [MyHook()]``): they run after these, and
        before the writer that the trainer appends last (see :meth:`build_writers`).
        """
        cfg = self.cfg
        result: List[hooks.HookBase] = [
            hooks.IterationTimer(),
            hooks.LRScheduler(self.optimizer, self.scheduler),
        ]
        if cfg.SOLVER.FREEZE_ITERS > 0 or cfg.SOLVER.FREEZE_FC_ITERS > 0:
            result.append(
                hooks.LayerFreeze(
                    unwrap_model(self.model),
                    [name for name in cfg.MODEL.FREEZE_LAYERS if name],
                    cfg.SOLVER.FREEZE_ITERS,
                    cfg.SOLVER.FREEZE_FC_ITERS,
                    classifier="heads.classifier",
                )
            )
        precise_bn = None
        if cfg.TEST.PRECISE_BN.ENABLED:
            precise_bn = hooks.PreciseBN(
                cfg.TEST.EVAL_PERIOD, self.model, self.build_precise_bn_loader(cfg), cfg.TEST.PRECISE_BN.NUM_ITER
            )
        if cfg.SOLVER.SWA.ENABLED:
            # One stream of batches for both, when precise BN is on too.
            update_bn = precise_bn.updater if precise_bn is not None else hooks.BNStatsUpdater(
                self.model, self.build_precise_bn_loader(cfg), cfg.TEST.PRECISE_BN.NUM_ITER)
            swa = cfg.SOLVER.SWA
            result.append(
                SWA(self.model, swa.ITER, swa.PERIOD, lr_factor=swa.LR_FACTOR, eta_min_lr=swa.ETA_MIN_LR,
                    lr_sched=swa.LR_SCHED, update_bn=update_bn)
            )
        if precise_bn is not None:
            result.append(precise_bn)
        result.append(hooks.EvalHook(cfg.TEST.EVAL_PERIOD, self._evaluate_and_keep))
        if comm.is_main_process() and cfg.DATASETS.TESTS:
            result.append(hooks.BestCheckpointer(self.checkpointer, f"{cfg.DATASETS.TESTS[0]}/metric"))
        result.append(
            hooks.PeriodicCheckpointer(
                self.checkpointer, cfg.SOLVER.CHECKPOINT_PERIOD, iter_period=cfg.SOLVER.CHECKPOINT_PERIOD_ITERS
            )
        )
        return result

    def _evaluate_and_keep(self):
        try:
            self._last_eval_results = self.test(self.cfg, self.model)
        except Exception:
            # The evaluation runs before this epoch's checkpoint: write it first, so that no training is lost.
            name = "model_final" if self.iter >= self.max_iter - 1 else f"model_{self.epoch:04d}"
            logger.error("Evaluation failed at epoch %d (iteration %d); saving %s.pth first, so that --resume "
                         "continues after this epoch and --eval-only can evaluate it once the test set is fixed.",
                         self.epoch, self.iter, name)
            self.checkpointer.save(name, iteration=self.iter, epoch=self.epoch)
            raise
        return self._last_eval_results

    @classmethod
    def run(cls, cfg: CfgNode, *, eval_only: bool = False, resume: bool = False) -> Optional[Mapping[str, Any]]:
        """What a train script does: with ``eval_only`` test MODEL.WEIGHTS (:meth:`test_weights`); otherwise
        build the trainer, load MODEL.WEIGHTS or ``resume`` from OUTPUT_DIR, and train.

        Returns:
            The evaluation results (main process).
        """
        if eval_only:
            return cls.test_weights(cfg)
        trainer = cls(cfg)
        trainer.resume_or_load(resume=resume)
        return trainer.train()

    @classmethod
    def test_weights(cls, cfg: CfgNode) -> "OrderedDict[str, Dict]":
        """``--eval-only``: build the model without ImageNet initialisation, load MODEL.WEIGHTS (without the
        training-only classifier, which need not match MODEL.HEADS.NUM_CLASSES) and test it."""
        if not cfg.MODEL.WEIGHTS:
            raise ValueError("--eval-only evaluates the weights in MODEL.WEIGHTS, which is empty: add "
                             "MODEL.WEIGHTS path/to/model_final.pth to the command line.")
        cfg = cfg.clone()
        cfg.defrost()
        cfg.MODEL.BACKBONE.PRETRAIN = False
        cfg.freeze()
        model = cls.build_model(cfg)
        load_inference_weights(model, cfg.MODEL.WEIGHTS, partial=cfg.MODEL.WEIGHTS_PARTIAL)
        if cfg.MODEL.COMPILE:
            compile_model(model)
        return cls.test(cfg, model)

    @classmethod
    def test(cls, cfg: CfgNode, model: nn.Module, evaluators: Optional[List] = None) -> "OrderedDict[str, Dict]":
        """Evaluate ``model`` on every dataset of DATASETS.TESTS, its forward passes at MODEL.PRECISION
        (:func:`~fastreid.utils.precision.precision_from_config`; features reach the evaluator as float32).

        Returns:
            ``{dataset_name: {"Rank-1": ..., "mAP": ..., ...}}`` on the main process (empty elsewhere).
        """
        share_bf16_check(cfg.MODEL.PRECISION, cfg.MODEL.DEVICE)
        results: "OrderedDict[str, Dict]" = OrderedDict()
        for index, dataset_name in enumerate(cfg.DATASETS.TESTS):
            logger.info("Evaluating on %s", dataset_name)
            data_loader, num_query = cls.build_test_loader(cfg, dataset_name)
            evaluator = (
                evaluators[index]
                if evaluators is not None
                else cls.build_evaluator(cfg, dataset_name, num_query, os.path.join(cfg.OUTPUT_DIR, dataset_name))
            )
            result = inference_on_dataset(model, data_loader, evaluator, flip_test=cfg.TEST.FLIP_ENABLED,
                                          precision=precision_from_config(cfg))
            if comm.is_main_process() and result:
                results[dataset_name] = result
        if results:
            print_csv_format(results)
        return results
