"""``DefaultTrainer``: the standard training run, built from a config.

Every piece is built by an overridable method (``build_model``, ``build_optimizer``, ``build_lr_scheduler``,
``build_train_loader``, ``build_test_loader``, ``build_evaluator``, ``build_hooks``, ``build_writers``), so a
project changes one piece by subclassing.
"""
import logging
import os
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from fastreid.config import CfgNode
from fastreid.data import build_reid_test_loader, build_reid_train_loader, build_train_set
from fastreid.data.transforms import build_transforms
from fastreid.evaluation import ReidEvaluator, inference_on_dataset, print_csv_format
from fastreid.modeling import build_model
from fastreid.solver import build_grad_clipper, build_lr_scheduler, build_optimizer
from fastreid.utils import comm
from fastreid.utils.checkpoint import Checkpointer
from fastreid.utils.file_io import PathManager
from fastreid.utils.events import CommonMetricPrinter, JSONWriter, TensorboardXWriter
from fastreid.utils.logger import setup_logger

from . import hooks
from .swa import SWA
from .train_loop import AMPTrainer, SimpleTrainer, TrainerBase

__all__ = ["DefaultTrainer"]

logger = logging.getLogger(__name__)


class DefaultTrainer(TrainerBase):
    """Builds model, data, optimizer, schedule, checkpointer and hooks from ``cfg`` and trains.

    Example::

        trainer = DefaultTrainer(cfg)
        trainer.resume_or_load(resume=args.resume)
        trainer.train()

    Attributes:
        cfg: the run's config (MODEL.HEADS.NUM_CLASSES filled in from the training set when it is 0).
        model: the model (DDP-wrapped with several processes).
        checkpointer: saves to OUTPUT_DIR; model, optimizer, scheduler, trainer state (hooks, grad scaler,
            sampler seed) and RNG state.
        iters_per_epoch: training images // SOLVER.IMS_PER_BATCH.
    """

    def __init__(self, cfg: CfgNode) -> None:
        super().__init__()
        if not logging.getLogger("fastreid").isEnabledFor(logging.INFO):
            setup_logger()
        data_loader = self.build_train_loader(cfg)
        cfg = self.auto_num_classes(cfg, data_loader.dataset.num_classes)
        self.cfg = cfg

        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        if comm.get_world_size() > 1:
            # LayerFreeze toggles requires_grad, so some parameters may receive no gradient in a step.
            device_ids = [comm.get_local_rank()] if next(model.parameters()).is_cuda else None
            model = DistributedDataParallel(
                model, device_ids=device_ids, broadcast_buffers=False, find_unused_parameters=True
            )
        trainer_cls = AMPTrainer if cfg.SOLVER.FP16_ENABLED else SimpleTrainer
        self._trainer = trainer_cls(model, data_loader, optimizer, grad_clipper=build_grad_clipper(cfg))

        self.iters_per_epoch = self.compute_iters_per_epoch(cfg, len(data_loader.dataset))
        self.scheduler = self.build_lr_scheduler(cfg, optimizer, self.iters_per_epoch)
        self.checkpointer = Checkpointer(
            _unwrap(model), cfg.OUTPUT_DIR, optimizer=optimizer, scheduler=self.scheduler, trainer=self
        )
        self.start_epoch = 0
        self.start_iter: Optional[int] = None
        self._resumed_sampler_seed: Optional[int] = None
        self._last_eval_results: Optional[Mapping[str, Any]] = None
        self.max_epoch = cfg.SOLVER.MAX_EPOCH
        self.register_hooks(self.build_hooks())

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
        position in the sampler's stream, so training continues as if never interrupted. Loading weights
        without resuming (fine-tuning) keeps a fresh optimizer and skips parameters of another shape, such as
        a classifier trained for another number of identities.
        """
        checkpoint = self.checkpointer.resume_or_load(self.cfg.MODEL.WEIGHTS, resume=resume)
        if resume and self.checkpointer.has_checkpoint():
            self.start_iter = checkpoint.get("iteration", -1) + 1
            self.start_epoch = self.start_iter // self.iters_per_epoch
            self._restart_data_stream(self.start_iter)
            logger.info("Resuming at epoch %d, iteration %d", self.start_epoch, self.start_iter)

    def _restart_data_stream(self, start_iter: int) -> None:
        seed = self._resumed_sampler_seed if self._resumed_sampler_seed is not None else self._sampler_seed
        loader = build_reid_train_loader(self.cfg, train_set=self.data_loader.dataset, seed=seed, start_iter=start_iter)
        self._trainer.data_loader = loader
        self._trainer._data_loader_iter_obj = None

    @property
    def _sampler_seed(self) -> int:
        return self.data_loader.batch_sampler.sampler.seed

    def train(self) -> Optional[Mapping[str, Any]]:
        """Train from ``start_epoch`` to SOLVER.MAX_EPOCH; return the last evaluation results (main process)."""
        try:
            super().train(self.start_epoch, self.max_epoch, self.iters_per_epoch, start_iter=self.start_iter)
        finally:
            # Stop the loader workers now: left to the garbage collector (the trainer lives in reference
            # cycles), each worker would wait out a 5 s shutdown timeout.
            self._trainer._data_loader_iter_obj = None
        return self._last_eval_results if comm.is_main_process() else None

    def run_step(self) -> None:
        self._trainer.iter = self.iter
        self._trainer.epoch = self.epoch
        self._trainer.run_step()

    def state_dict(self) -> Dict[str, Any]:
        state = super().state_dict()
        state["inner"] = self._trainer.state_dict()
        state["sampler_seed"] = self._sampler_seed
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._trainer.load_state_dict(state.get("inner", {}))
        if "sampler_seed" in state:
            # Consumed by _restart_data_stream, which rebuilds the loader at the resumed position.
            self._resumed_sampler_seed = int(state["sampler_seed"])

    # ------------------------------------------------------------------------------------------------
    # builders (override in a subclass to change one piece)
    # ------------------------------------------------------------------------------------------------
    @classmethod
    def build_model(cls, cfg: CfgNode) -> nn.Module:
        model = build_model(cfg)
        logger.info("Model:\n%s", model)
        return model

    @classmethod
    def build_optimizer(cls, cfg: CfgNode, model: nn.Module) -> torch.optim.Optimizer:
        return build_optimizer(cfg, model)

    @classmethod
    def build_lr_scheduler(cls, cfg: CfgNode, optimizer: torch.optim.Optimizer, iters_per_epoch: int):
        return build_lr_scheduler(cfg, optimizer, iters_per_epoch)

    @classmethod
    def build_train_loader(cls, cfg: CfgNode):
        logger.info("Preparing the training data")
        return build_reid_train_loader(cfg)

    @classmethod
    def build_test_loader(cls, cfg: CfgNode, dataset_name: str):
        return build_reid_test_loader(cfg, dataset_name=dataset_name)

    @classmethod
    def build_evaluator(cls, cfg: CfgNode, dataset_name: str, num_query: int, output_dir: Optional[str] = None):
        return ReidEvaluator(cfg, num_query, output_dir)

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

    def build_writers(self) -> List:
        """Console (with ETA), ``metrics.json`` and tensorboard event writers, on the main process."""
        output_dir = self.cfg.OUTPUT_DIR
        PathManager.mkdirs(output_dir)
        return [
            CommonMetricPrinter(self.max_epoch * self.iters_per_epoch),
            JSONWriter(os.path.join(output_dir, "metrics.json")),
            TensorboardXWriter(output_dir),
        ]

    def build_hooks(self) -> List[hooks.HookBase]:
        cfg = self.cfg
        result: List[hooks.HookBase] = [
            hooks.IterationTimer(),
            hooks.LRScheduler(self.optimizer, self.scheduler),
        ]
        if cfg.SOLVER.FREEZE_ITERS > 0 or cfg.SOLVER.FREEZE_FC_ITERS > 0:
            result.append(
                hooks.LayerFreeze(
                    _unwrap(self.model),
                    [name for name in cfg.MODEL.FREEZE_LAYERS if name],
                    cfg.SOLVER.FREEZE_ITERS,
                    cfg.SOLVER.FREEZE_FC_ITERS,
                    classifier="heads.classifier",
                )
            )
        precise_bn = None
        if cfg.TEST.PRECISE_BN.ENABLED or cfg.SOLVER.SWA.ENABLED:
            precise_bn = hooks.PreciseBN(
                cfg.TEST.EVAL_PERIOD, self.model, self._precise_bn_loader(), cfg.TEST.PRECISE_BN.NUM_ITER
            )
        if cfg.SOLVER.SWA.ENABLED:
            swa = cfg.SOLVER.SWA
            result.append(
                SWA(self.model, swa.ITER, swa.PERIOD, lr_factor=swa.LR_FACTOR, eta_min_lr=swa.ETA_MIN_LR,
                    lr_sched=swa.LR_SCHED, update_bn=precise_bn.update_stats)
            )
        if cfg.TEST.PRECISE_BN.ENABLED:
            result.append(precise_bn)
        result.append(hooks.EvalHook(cfg.TEST.EVAL_PERIOD, self._evaluate_and_keep))
        if comm.is_main_process():
            result.append(hooks.BestCheckpointer(self.checkpointer, f"{cfg.DATASETS.TESTS[0]}/metric"))
        result.append(
            hooks.PeriodicCheckpointer(
                self.checkpointer, cfg.SOLVER.CHECKPOINT_PERIOD, iter_period=cfg.SOLVER.CHECKPOINT_PERIOD_ITERS
            )
        )
        if comm.is_main_process():
            result.append(hooks.PeriodicWriter(self.build_writers(), period=cfg.SOLVER.LOG_PERIOD))
        return result

    def _precise_bn_loader(self):
        cfg = self.cfg
        train_set = build_train_set(
            cfg, names=[cfg.TEST.PRECISE_BN.DATASET], transform=build_transforms(cfg, is_train=True)
        )
        return build_reid_train_loader(cfg, train_set=train_set)

    def _evaluate_and_keep(self):
        self._last_eval_results = self.test(self.cfg, self.model)
        return self._last_eval_results

    @classmethod
    def run(cls, cfg: CfgNode, args) -> Optional[Mapping[str, Any]]:
        """What a train script does with its parsed ``args``: ``--eval-only`` tests MODEL.WEIGHTS
        (:meth:`test_weights`); otherwise build the trainer, load or ``--resume``, and train.

        Returns:
            The evaluation results (main process).
        """
        if args.eval_only:
            return cls.test_weights(cfg)
        trainer = cls(cfg)
        trainer.resume_or_load(resume=args.resume)
        return trainer.train()

    @classmethod
    def test_weights(cls, cfg: CfgNode) -> "OrderedDict[str, Dict]":
        """``--eval-only``: build the model without ImageNet initialisation, load MODEL.WEIGHTS and test it."""
        cfg = cfg.clone()
        cfg.defrost()
        cfg.MODEL.BACKBONE.PRETRAIN = False
        cfg.freeze()
        model = cls.build_model(cfg)
        Checkpointer(model, save_rng=False).load(cfg.MODEL.WEIGHTS)
        return cls.test(cfg, model)

    @classmethod
    def test(cls, cfg: CfgNode, model: nn.Module, evaluators: Optional[List] = None) -> "OrderedDict[str, Dict]":
        """Evaluate ``model`` on every dataset of DATASETS.TESTS.

        Returns:
            ``{dataset_name: {"Rank-1": ..., "mAP": ..., ...}}`` on the main process (empty elsewhere).
        """
        results: "OrderedDict[str, Dict]" = OrderedDict()
        for index, dataset_name in enumerate(cfg.DATASETS.TESTS):
            logger.info("Evaluating on %s", dataset_name)
            data_loader, num_query = cls.build_test_loader(cfg, dataset_name)
            evaluator = (
                evaluators[index]
                if evaluators is not None
                else cls.build_evaluator(cfg, dataset_name, num_query, os.path.join(cfg.OUTPUT_DIR, dataset_name))
            )
            result = inference_on_dataset(model, data_loader, evaluator, flip_test=cfg.TEST.FLIP_ENABLED)
            if comm.is_main_process() and result:
                results[dataset_name] = result
        if results:
            print_csv_format(results)
        return results


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model
