"""Training hooks: timing, learning-rate stepping, checkpoints, evaluation, precise BN, layer freezing, writers.

Epoch-level work (checkpoint, precise BN, evaluation) runs in ``after_step`` on the last iteration of an
epoch, so its results are stored at that iteration and written by :class:`PeriodicWriter` in the same
``after_step`` call. Register hooks in this order: IterationTimer, LRScheduler, LayerFreeze, PreciseBN,
EvalHook, BestCheckpointer, PeriodicCheckpointer, then your own; :class:`~fastreid.engine.DefaultTrainer`
appends the :class:`PeriodicWriter` itself, after all of them.
"""
import itertools
import logging
import time
from collections import Counter
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence

import torch
from torch import nn

from fastreid.modeling.freeze import FrozenLayers, freeze_layers, select_modules, unfreeze_layers
from fastreid.utils import comm
from fastreid.utils.checkpoint import Checkpointer
from fastreid.utils.env import import_fvcore_nn
from fastreid.utils.events import EventStorage, EventWriter

from .ddp import unwrap_model
from .train_loop import HookBase

__all__ = [
    "BNStatsUpdater",
    "BestCheckpointer",
    "CallbackHook",
    "EvalHook",
    "IterationTimer",
    "LRScheduler",
    "LayerFreeze",
    "PeriodicCheckpointer",
    "PeriodicWriter",
    "PreciseBN",
    "flatten_results_dict",
    "head_classifiers",
]

logger = logging.getLogger(__name__)


def _at_epoch_period(trainer, period: int) -> bool:
    """True on the last iteration of every ``period``-th epoch and on the last iteration of training."""
    if trainer.iter == trainer.max_iter - 1:
        return True
    return period > 0 and trainer.is_epoch_end() and (trainer.epoch + 1) % period == 0


class CallbackHook(HookBase):
    """Calls the given functions, each with the trainer as only argument."""

    def __init__(
        self,
        *,
        before_train: Optional[Callable] = None,
        after_train: Optional[Callable] = None,
        before_epoch: Optional[Callable] = None,
        after_epoch: Optional[Callable] = None,
        before_step: Optional[Callable] = None,
        after_step: Optional[Callable] = None,
    ) -> None:
        self._callbacks = dict(
            before_train=before_train,
            after_train=after_train,
            before_epoch=before_epoch,
            after_epoch=after_epoch,
            before_step=before_step,
            after_step=after_step,
        )

    def _call(self, name: str) -> None:
        if self._callbacks[name] is not None:
            self._callbacks[name](self.trainer)

    def before_train(self) -> None:
        self._call("before_train")

    def after_train(self) -> None:
        self._call("after_train")

    def before_epoch(self) -> None:
        self._call("before_epoch")

    def after_epoch(self) -> None:
        self._call("after_epoch")

    def before_step(self) -> None:
        self._call("before_step")

    def after_step(self) -> None:
        self._call("after_step")


class IterationTimer(HookBase):
    """Records the duration of each step as "time" and logs the total training time at the end.

    Register it first so that "time" covers the step only, not the other hooks.
    """

    def __init__(self, warmup_iter: int = 3) -> None:
        """
        Args:
            warmup_iter: first iterations left out of the reported speed.
        """
        self._warmup_iter = warmup_iter
        self._step_start = 0.0
        self._train_start = 0.0
        self._timed_seconds = 0.0
        self._timed_iters = 0

    def before_train(self) -> None:
        self._train_start = time.perf_counter()

    def before_step(self) -> None:
        self._step_start = time.perf_counter()

    def after_step(self) -> None:
        seconds = time.perf_counter() - self._step_start
        self.trainer.storage.put_scalar("time", seconds)
        if self.trainer.iter - self.trainer.start_iter >= self._warmup_iter:
            self._timed_seconds += seconds
            self._timed_iters += 1

    def after_train(self) -> None:
        total = time.perf_counter() - self._train_start
        if self._timed_iters:
            logger.info(
                "Overall training speed: %d iterations in %.1f s (%.4f s / it); total training time %.1f s",
                self._timed_iters,
                self._timed_seconds,
                self._timed_seconds / self._timed_iters,
                total,
            )
        else:
            logger.info("Total training time: %.1f s", total)


class LRScheduler(HookBase):
    """Records "lr" and steps a per-iteration scheduler (e.g. ``fastreid.solver.build_lr_scheduler``).

    "lr" is that of the group holding the most parameter elements.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
        self._optimizer = optimizer
        self._scheduler = scheduler
        sizes = Counter({i: sum(p.numel() for p in g["params"]) for i, g in enumerate(optimizer.param_groups)})
        self._group = sizes.most_common(1)[0][0] if sizes else 0

    def after_step(self) -> None:
        lr = self._optimizer.param_groups[self._group]["lr"]
        self.trainer.storage.put_scalar("lr", lr, smoothing_hint=False)
        self._scheduler.step()


class PeriodicCheckpointer(HookBase):
    """Saves ``{prefix}_{epoch:04d}.pth`` every ``period`` epochs and ``{prefix}_final.pth`` at the end.

    Each file stores ``iteration`` (last completed iteration) and ``epoch`` besides the checkpointables;
    resume with ``start_iter = iteration + 1``, ``start_epoch = start_iter // iters_per_epoch``. Nothing is
    saved after a failed iteration: the exception leaves ``run_step`` before any ``after_step``.
    """

    def __init__(
        self,
        checkpointer: Checkpointer,
        period: int,
        *,
        iter_period: int = 0,
        max_to_keep: Optional[int] = None,
        file_prefix: str = "model",
    ) -> None:
        """
        Args:
            checkpointer: the checkpointer (model and checkpointables).
            period: period in epochs (SOLVER.CHECKPOINT_PERIOD); <= 0 saves only the final model.
            iter_period: additional period in iterations (``{prefix}_iter_{iteration:07d}.pth``); 0 = none.
            max_to_keep: keep only this many periodic files (the final one is never deleted).
            file_prefix: file name prefix.
        """
        if max_to_keep is not None and max_to_keep < 1:
            raise ValueError(f"max_to_keep must be >= 1, got {max_to_keep}.")
        self.checkpointer = checkpointer
        self.period = int(period)
        self.iter_period = int(iter_period)
        self.max_to_keep = max_to_keep
        self.file_prefix = file_prefix
        self._recent: list = []

    def after_step(self) -> None:
        t = self.trainer
        extra = {"iteration": t.iter, "epoch": t.epoch}
        if t.iter >= t.max_iter - 1:
            self.checkpointer.save(f"{self.file_prefix}_final", **extra)
        elif self.period > 0 and t.is_epoch_end() and (t.epoch + 1) % self.period == 0:
            self._save_periodic(f"{self.file_prefix}_{t.epoch:04d}", extra)
        elif self.iter_period > 0 and (t.iter + 1) % self.iter_period == 0:
            self._save_periodic(f"{self.file_prefix}_iter_{t.iter:07d}", extra)

    def _save_periodic(self, name: str, extra: Dict[str, Any]) -> None:
        self.checkpointer.save(name, **extra)
        if self.max_to_keep is None or not self.checkpointer.save_to_disk:
            return
        self._recent.append(self.checkpointer.get_checkpoint_file())
        while len(self._recent) > self.max_to_keep:
            stale = self._recent.pop(0)
            if self.checkpointer.path_manager.exists(stale):
                self.checkpointer.path_manager.rm(stale)


def flatten_results_dict(results: Mapping[str, Any], prefix: str = "") -> Dict[str, float]:
    """Flattens nested result dicts: ``{"Market1501": {"mAP": 0.8}}`` -> ``{"Market1501/mAP": 0.8}``.

    Raises:
        ValueError: if a leaf is not a number (or one-element tensor).
    """
    flat: Dict[str, float] = {}
    for key, value in results.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten_results_dict(value, name))
            continue
        try:
            flat[name] = float(value)
        except (TypeError, ValueError) as e:
            raise ValueError(f"Evaluation result '{name}' is {value!r}, not a number.") from e
    return flat


class EvalHook(HookBase):
    """Runs an evaluation function every ``eval_period`` epochs and at the end of training.

    The returned (possibly nested) dict is flattened to "a/b" names and put in the event storage with
    ``smoothing_hint=False``. All processes call the function and then synchronize.
    """

    def __init__(self, eval_period: int, eval_function: Callable[[], Optional[Mapping[str, Any]]]) -> None:
        """
        Args:
            eval_period: period in epochs (TEST.EVAL_PERIOD); <= 0 evaluates only at the end.
            eval_function: runs the evaluation and returns its results (or None / {} on non-main ranks).
        """
        self._period = int(eval_period)
        self._func = eval_function

    def after_step(self) -> None:
        if _at_epoch_period(self.trainer, self._period):
            self._do_eval()

    def _do_eval(self) -> None:
        results = self._func()
        if results:
            flat = flatten_results_dict(results)
            self.trainer.storage.put_scalars(**flat, smoothing_hint=False)
            logger.info(
                "Evaluation results at epoch %d (iteration %d): %s",
                self.trainer.epoch,
                self.trainer.iter,
                ", ".join(f"{k}: {v:.4f}" for k, v in flat.items()),
            )
        # Evaluation timing varies by rank; keep ranks together before training goes on.
        comm.synchronize()


class BestCheckpointer(HookBase):
    """Saves ``{file_name}.pth`` whenever a new evaluation result of ``metric_name`` improves.

    Register it after :class:`EvalHook`. The file is not tagged as the last checkpoint, so resuming still
    uses the latest periodic checkpoint; the best value is part of the trainer state and is resumed.
    """

    def __init__(self, checkpointer: Checkpointer, metric_name: str, mode: str = "max", file_name: str = "model_best") -> None:
        """
        Args:
            checkpointer: the checkpointer.
            metric_name: flattened metric name as EvalHook stores it (e.g. "Market1501/metric").
            mode: "max" or "min".
            file_name: file name without extension.
        """
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got '{mode}'.")
        self.checkpointer = checkpointer
        self.metric_name = metric_name
        self.mode = mode
        self.file_name = file_name
        self.best_value: Optional[float] = None
        self.best_iter: Optional[int] = None

    def _improves(self, value: float) -> bool:
        if self.best_value is None:
            return True
        return value > self.best_value if self.mode == "max" else value < self.best_value

    def after_step(self) -> None:
        if not self.trainer.is_epoch_end() and self.trainer.iter != self.trainer.max_iter - 1:
            return
        latest = self.trainer.storage.latest().get(self.metric_name)
        if latest is None or latest[1] != self.trainer.iter:
            return  # no evaluation of this metric at this iteration
        value = latest[0]
        if not self._improves(value):
            logger.info("%s = %.4f does not improve on the best %.4f.", self.metric_name, value, self.best_value)
            return
        logger.info("%s improved to %.4f (previous best %s); saving %s.", self.metric_name, value, self.best_value, self.file_name)
        self.best_value, self.best_iter = value, self.trainer.iter
        self.checkpointer.save(self.file_name, tag_last=False, iteration=self.trainer.iter, epoch=self.trainer.epoch,
                               **{"best_" + self.metric_name.replace("/", "_"): value})

    def state_dict(self) -> Dict[str, Any]:
        if self.best_value is None:
            return {}
        return {"best_value": self.best_value, "best_iter": self.best_iter}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best_value = state.get("best_value")
        self.best_iter = state.get("best_iter")


class BNStatsUpdater:
    """Recomputes the BatchNorm statistics of ``model`` on training batches when called (fvcore's
    ``update_bn_stats``): used by :class:`PreciseBN` and by SWA after averaging.

    Successive calls continue through ``data_loader``. Does nothing (one log line at construction) if the
    model has no BatchNorm layer in training mode.

    Args:
        model: the model, in training mode.
        data_loader: iterable of batches accepted by ``model(batch)``; at least ``num_iter`` long.
        num_iter: batches to average over (TEST.PRECISE_BN.NUM_ITER).
    """

    def __init__(self, model: nn.Module, data_loader: Iterable, num_iter: int) -> None:
        self._model = model
        self._data_loader = data_loader
        self._num_iter = int(num_iter)
        self._data_iter = None
        self.enabled = len(import_fvcore_nn().get_bn_modules(model)) > 0
        if not self.enabled:
            logger.info("Precise BN is disabled: the model has no BatchNorm layer in training mode.")

    def __call__(self) -> None:
        if not self.enabled:
            return
        if self._data_iter is None:
            self._data_iter = iter(self._data_loader)
        logger.info("Running precise BN for %d iterations...", self._num_iter)
        # A throw-away storage: whatever the model logs during these forwards is not training data.
        with EventStorage(), torch.no_grad():
            import_fvcore_nn().update_bn_stats(
                self._model, itertools.islice(self._data_iter, self._num_iter), self._num_iter)


class PreciseBN(HookBase):
    """Recomputes BatchNorm statistics on training data before evaluation (a :class:`BNStatsUpdater`).

    Runs on the same schedule as :class:`EvalHook` and must be registered before it.

    Attributes:
        updater: the :class:`BNStatsUpdater`; share it with SWA so both draw from one stream of batches.
    """

    def __init__(self, period: int, model: nn.Module, data_loader: Iterable, num_iter: int) -> None:
        """
        Args:
            period: period in epochs (TEST.EVAL_PERIOD).
            model, data_loader, num_iter: see :class:`BNStatsUpdater`.
        """
        self._period = int(period)
        self.updater = BNStatsUpdater(model, data_loader, num_iter)

    def after_step(self) -> None:
        if _at_epoch_period(self.trainer, self._period):
            self.update_stats()

    def update_stats(self) -> None:
        """Recompute the statistics now."""
        self.updater()


def head_classifiers(model: nn.Module, name: str = "heads.classifier") -> Dict[str, nn.Module]:
    """The identity classifiers of ``model``'s head, by qualified name.

    The module holding ``name`` (the head, "heads") may declare its classifiers in a ``classifier_names``
    attribute (HACNN: ``classifier_global``, ``classifier_local``; PCB: ``classifier``, its part classifiers);
    then those are returned, else the module ``name`` itself.

    Raises:
        KeyError: when there is neither, naming the head and what to declare.
    """
    modules = dict(model.named_modules())
    parent, _, _ = name.rpartition(".")
    owner = modules.get(parent)
    declared = getattr(owner, "classifier_names", None)
    if declared:
        prefix = f"{parent}." if parent else ""
        missing = [n for n in declared if f"{prefix}{n}" not in modules]
        if missing:
            raise KeyError(f"{type(owner).__name__}.classifier_names lists {missing}, which are not its modules")
        return {f"{prefix}{n}": modules[f"{prefix}{n}"] for n in declared}
    if name in modules:
        return {name: modules[name]}
    raise KeyError(
        f"SOLVER.FREEZE_FC_ITERS > 0 freezes the classifier '{name}', but the model has no such module and "
        f"{type(owner).__name__ if owner is not None else f'module {parent!r}'} declares no `classifier_names`. "
        f"Declare the head's classifier modules in a `classifier_names` class attribute, or set "
        f"SOLVER.FREEZE_FC_ITERS 0."
    )


class LayerFreeze(HookBase):
    """Trains without the listed layers for the first iterations, and without the classifiers for the last.

    For the first ``freeze_iters`` iterations the modules named in ``freeze_layers`` (qualified names such as
    "backbone" or "backbone.layer1", fast-reid's MODEL.FREEZE_LAYERS) are frozen with
    :func:`fastreid.modeling.freeze.freeze_layers` (no gradients, norm layers in eval mode); afterwards exactly
    what was frozen is opened again. For the last ``fc_freeze_iters`` iterations (fast-reid's
    SOLVER.FREEZE_FC_ITERS) the parameters of every classifier of the head are frozen (:func:`head_classifiers`:
    the part classifiers of PCB, both of HACNN). Parameters without a gradient are skipped by the optimizer, so
    frozen weights do not change. Under DistributedDataParallel build the wrapper with
    ``create_ddp_model(model, find_unused_parameters=True)`` (DefaultTrainer does when layers are frozen).
    """

    def __init__(
        self,
        model: nn.Module,
        freeze_layers: Sequence[str],
        freeze_iters: int,
        fc_freeze_iters: int = 0,
        classifier: str = "heads.classifier",
    ) -> None:
        """
        Args:
            model: the model (a DDP wrapper is unwrapped).
            freeze_layers: qualified module names to freeze; empty names are ignored.
            freeze_iters: number of first iterations with those layers frozen.
            fc_freeze_iters: number of last iterations with the classifiers frozen.
            classifier: qualified name of the classifier; the head holding it may declare several
                (see :func:`head_classifiers`).

        Raises:
            KeyError: when a name in ``freeze_layers`` is not a module of the model, or (with ``fc_freeze_iters``
                > 0) the head has no classifier.
        """
        self.model = unwrap_model(model)
        self.freeze_iters = int(freeze_iters)
        self.fc_freeze_iters = int(fc_freeze_iters)
        self.freeze_names = [n for n in freeze_layers if n]
        select_modules(self.model, self.freeze_names)  # fail now, not at the first step
        self.classifiers = head_classifiers(self.model, classifier) if self.fc_freeze_iters > 0 else {}
        self._frozen: Optional[FrozenLayers] = None
        self.fc_frozen = False

    def before_step(self) -> None:
        it = self.trainer.iter
        if it < self.freeze_iters and self._frozen is None and self.freeze_names:
            self._frozen = freeze_layers(self.model, self.freeze_names)
            logger.info("Freezing %s for the first %d iterations.", self.freeze_names, self.freeze_iters)
        elif it >= self.freeze_iters and self._frozen is not None:
            unfreeze_layers(self.model, self._frozen)
            self._frozen = None
            logger.info("Opening %s for training.", self.freeze_names)
        if self._frozen is not None:
            # Evaluation in between may have put the whole model back in training mode.
            for module in self._frozen.modules.values():
                module.eval()
        if self.classifiers and not self.fc_frozen and self.trainer.max_iter - it <= self.fc_freeze_iters:
            for module in self.classifiers.values():
                for p in module.parameters():
                    p.requires_grad_(False)
            self.fc_frozen = True
            logger.info("Freezing %s for the last %d iterations.", ", ".join(self.classifiers), self.fc_freeze_iters)


class PeriodicWriter(HookBase):
    """Calls the writers every ``period`` iterations, at the end of every epoch and at the end of training.

    Register it last so that it writes what the other hooks stored at the same iteration.
    """

    def __init__(self, writers: Sequence[EventWriter], period: int = 20) -> None:
        for w in writers:
            if not isinstance(w, EventWriter):
                raise TypeError(f"{type(w).__name__} is not an EventWriter.")
        self._writers = list(writers)
        self._period = int(period)

    def after_step(self) -> None:
        t = self.trainer
        if (t.iter + 1) % self._period == 0 or t.is_epoch_end() or t.iter == t.max_iter - 1:
            for writer in self._writers:
                writer.write()

    def after_train(self) -> None:
        for writer in self._writers:
            # Write what a failed iteration or the last hooks left, then close.
            writer.write()
            writer.close()
