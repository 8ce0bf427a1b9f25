"""The training run of a torchreid engine: fastreid's epoch loop with hooks doing torchreid's per-epoch work.

Order within an epoch, as torchreid's ``Engine.run`` / ``Engine.train``: layers opened or frozen
(``fixbase_epoch``) at the start; each batch one step (fastreid's, or the engine's own ``forward_backward``);
at the end the schedulers step, then (every ``eval_freq`` epochs from ``start_eval``, and after the last) the
engine tests and saves ``model.pth.tar-<epoch>``; the writers log every ``print_freq`` batches.
"""
import logging
import math
import os
from typing import Any, Dict, Mapping, Optional

import torch
from torch import nn

from fastreid.engine import TrainerBase, build_step
from fastreid.engine.hooks import HookBase, IterationTimer, PeriodicWriter
from fastreid.utils import comm
from fastreid.utils.events import CommonMetricPrinter, JSONWriter, TensorboardXWriter, get_event_storage

__all__ = ["EngineTrainer", "EpochSchedule", "TestAndSave", "TwoSteppedTransfer"]

logger = logging.getLogger(__name__)


class _LossModel(nn.Module):
    """The engine's ``compute_losses`` as the model of fastreid's step (which calls ``model(data)``)."""

    def __init__(self, engine) -> None:
        super().__init__()
        self.model = engine.model  # a submodule: train()/parameters() reach the engine's model
        self._engine = engine

    def forward(self, data: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        return self._engine.compute_losses(data)


class TwoSteppedTransfer(HookBase):
    """Before each epoch: models in train mode, then ``engine.two_stepped_transfer_learning``."""

    def __init__(self, fixbase_epoch: int, open_layers) -> None:
        self.fixbase_epoch = int(fixbase_epoch)
        self.open_layers = open_layers

    def before_epoch(self) -> None:
        engine = self.trainer.engine
        engine.set_model_mode("train")
        engine.two_stepped_transfer_learning(self.trainer.epoch, self.fixbase_epoch, self.open_layers)


class EpochSchedule(HookBase):
    """Records the learning rate every step and steps the engine's schedulers at the end of each epoch."""

    def after_step(self) -> None:
        engine = self.trainer.engine
        if comm.is_main_process():
            self.trainer.storage.put_scalar("lr", engine.get_current_lr(), smoothing_hint=False)
        if self.trainer.is_epoch_end():
            engine.update_lr()


class TestAndSave(HookBase):
    """At the end of every ``eval_freq``-th epoch from ``start_eval`` on, and of the last epoch: test, then save.

    A failing test saves the checkpoint first (rank-1 0), so that no training is lost.
    """

    def __init__(self, save_dir: str, start_eval: int, eval_freq: int, test_args: Mapping[str, Any]) -> None:
        self.save_dir = save_dir
        self.start_eval = int(start_eval)
        self.eval_freq = int(eval_freq)
        self.test_args = dict(test_args)

    def due(self, epoch: int, max_epoch: int) -> bool:
        """Whether the end of ``epoch`` (0-based) tests and saves."""
        done = epoch + 1
        periodic = self.eval_freq > 0 and done >= self.start_eval and done % self.eval_freq == 0
        return done == max_epoch or periodic

    def after_step(self) -> None:
        t = self.trainer
        if not t.is_epoch_end() or not self.due(t.epoch, t.max_epoch):
            return
        engine = t.engine
        try:
            rank1 = engine.test(**self.test_args)
        except Exception:
            logger.error("Testing failed after epoch %d; saving its checkpoint first.", t.epoch + 1)
            engine.save_model(t.epoch, 0.0, self.save_dir)
            raise
        engine.save_model(t.epoch, rank1, self.save_dir)
        t.last_rank1 = rank1
        comm.synchronize()


class EngineTrainer(TrainerBase):
    """fastreid's epoch loop driving a torchreid engine.

    Args:
        engine: the :class:`~fastreid.torchreid.engine.Engine` (its model, optimizer, loaders).
        save_dir: checkpoints, events and logs.
        print_freq: batches between log lines.
        fixbase_epoch, open_layers, start_eval, eval_freq: torchreid's ``run`` arguments.
        test_args: the arguments of ``engine.test`` during training.
        custom_step: the engine overrides ``forward_backward`` (its returned numbers are logged here).

    Attributes:
        step: fastreid's step (:class:`~fastreid.engine.SimpleTrainer`, or
            :class:`~fastreid.engine.AMPTrainer` at ``engine.precision``) over the engine's ``compute_losses``,
            reading the data manager's fastreid loader.
        data_time: seconds spent waiting for the current batch.
        last_rank1: rank-1 of the last test in this run.
    """

    def __init__(self, engine, *, save_dir: str, print_freq: int, fixbase_epoch: int, open_layers,
                 start_eval: int, eval_freq: int, test_args: Mapping[str, Any], custom_step: bool) -> None:
        super().__init__()
        self.engine = engine
        self.step = build_step(_LossModel(engine), engine.train_loader.loader, engine.optimizer,
                               precision=engine.precision)
        self.data_time = 0.0
        self.last_rank1: Optional[float] = None
        self._custom_step = custom_step
        self._test_args = dict(test_args)
        self.register_hooks([
            IterationTimer(),
            TwoSteppedTransfer(fixbase_epoch, open_layers),
            EpochSchedule(),
            TestAndSave(save_dir, start_eval, eval_freq, test_args),
        ])
        if comm.is_main_process():
            max_iter = engine.max_epoch * len(engine.train_loader)
            writers = [CommonMetricPrinter(max_iter)]
            if save_dir:
                os.makedirs(save_dir, exist_ok=True)
                writers += [JSONWriter(os.path.join(save_dir, "metrics.json")), TensorboardXWriter(save_dir)]
            self.register_hooks([PeriodicWriter(writers, period=max(1, int(print_freq)))])

    def train(self, start_epoch: int, max_epoch: int) -> Optional[float]:  # type: ignore[override]
        """Epochs ``start_epoch .. max_epoch - 1`` of ``len(engine.train_loader)`` batches; returns the last
        rank-1 (a fraction; main process). With nothing left to train, only tests."""
        if start_epoch >= max_epoch:
            logger.info("start_epoch %d >= max_epoch %d: nothing to train, testing", start_epoch, max_epoch)
            return self.engine.test(**self._test_args)
        super().train(start_epoch, max_epoch, len(self.engine.train_loader))
        return self.last_rank1

    def run_step(self) -> None:
        self.step.iter, self.step.epoch = self.iter, self.epoch
        self.engine.epoch = self.epoch
        batch, self.data_time = self.step.next_batch()
        summary = self.engine.forward_backward(self.engine.train_loader.convert(batch))
        if self._custom_step:
            self._record(summary)

    def _record(self, summary: Any) -> None:
        """Logs the numbers a custom ``forward_backward`` returned; a non-finite one stops training."""
        if not isinstance(summary, Mapping):
            return
        values = {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
                  for k, v in summary.items() if isinstance(v, (int, float, torch.Tensor))}
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if bad:
            raise FloatingPointError(f"forward_backward returned non-finite values at iteration {self.iter} "
                                     f"(epoch {self.epoch}): {bad}")
        if comm.is_main_process():
            storage = get_event_storage()
            storage.put_scalar("data_time", self.data_time)
            storage.put_scalars(**values)

    def close(self) -> None:
        """Stops the loader workers."""
        self.step.close()
