"""The epoch-based training loop, its hook protocol, and the plain and mixed-precision trainers."""
import logging
import math
import time
import weakref
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

import torch
from torch import nn

from fastreid.utils import comm
from fastreid.utils.events import EventStorage, get_event_storage

__all__ = ["AMPTrainer", "HookBase", "SimpleTrainer", "TrainerBase", "build_step"]

logger = logging.getLogger(__name__)


class HookBase:
    """Base class of the hooks a :class:`TrainerBase` calls around training, epochs and iterations.

    Call order::

        hook.before_train()
        for epoch in range(start_epoch, max_epoch):
            hook.before_epoch()
            for _ in range(iters_per_epoch):
                hook.before_step()
                trainer.run_step()
                hook.after_step()      # trainer.iter is the iteration just run
            hook.after_epoch()
        hook.after_train()             # trainer.iter == trainer.max_iter if training finished

    Work that belongs to the end of an epoch but must be logged with that epoch's last iteration (evaluation,
    checkpointing) runs in ``after_step`` when :meth:`TrainerBase.is_epoch_end` is True; writers run last.
    A hook that returns something from ``state_dict()`` has it saved and restored with the trainer.

    Attributes:
        trainer: weak proxy of the trainer, set by :meth:`TrainerBase.register_hooks`.
    """

    trainer: "TrainerBase" = None

    def before_train(self) -> None:
        pass

    def after_train(self) -> None:
        pass

    def before_epoch(self) -> None:
        pass

    def after_epoch(self) -> None:
        pass

    def before_step(self) -> None:
        pass

    def after_step(self) -> None:
        pass

    def state_dict(self) -> Dict[str, Any]:
        """Returns the hook's state to checkpoint (plain numbers, strings, containers, tensors)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


class TrainerBase:
    """An epoch-based loop calling hooks around :meth:`run_step`.

    Attributes:
        iter: the current iteration, counted over the whole run (``epoch * iters_per_epoch + i``).
        epoch: the current epoch.
        start_iter, start_epoch, max_iter, max_epoch, iters_per_epoch: set by :meth:`train`.
        storage: the :class:`EventStorage` of the run, whose ``iter`` is kept equal to :attr:`iter`.
    """

    def __init__(self) -> None:
        self._hooks: List[HookBase] = []
        self.iter = 0
        self.epoch = 0
        self.start_iter = 0
        self.start_epoch = 0
        self.max_iter = 0
        self.max_epoch = 0
        self.iters_per_epoch = 1
        self.storage: Optional[EventStorage] = None

    def register_hooks(self, hooks: Iterable[Optional[HookBase]]) -> None:
        """Appends hooks (None entries are skipped); they run in registration order."""
        hooks = [h for h in hooks if h is not None]
        for h in hooks:
            if not isinstance(h, HookBase):
                raise TypeError(f"Hooks must subclass HookBase, got {type(h).__name__}.")
            # A proxy avoids a reference cycle trainer -> hook -> trainer.
            h.trainer = weakref.proxy(self)
        self._hooks.extend(hooks)

    @property
    def hooks(self) -> List[HookBase]:
        return list(self._hooks)

    def is_epoch_end(self) -> bool:
        """Whether the iteration :attr:`iter` is the last one of its epoch."""
        return (self.iter + 1) % self.iters_per_epoch == 0

    def train(self, start_epoch: int, max_epoch: int, iters_per_epoch: int, *, start_iter: Optional[int] = None) -> None:
        """Runs epochs ``start_epoch .. max_epoch - 1`` of ``iters_per_epoch`` iterations each.

        Args:
            start_epoch: first epoch to run.
            max_epoch: number of epochs of the whole schedule.
            iters_per_epoch: iterations per epoch.
            start_iter: first iteration, when resuming inside ``start_epoch`` (from a checkpoint saved by
                an iteration period); defaults to ``start_epoch * iters_per_epoch``.
        """
        self.iters_per_epoch = int(iters_per_epoch)
        self.start_epoch, self.max_epoch = int(start_epoch), int(max_epoch)
        self.max_iter = self.max_epoch * self.iters_per_epoch
        first_iter = self.start_epoch * self.iters_per_epoch
        self.iter = self.start_iter = first_iter if start_iter is None else int(start_iter)
        if not first_iter <= self.start_iter < first_iter + self.iters_per_epoch:
            raise ValueError(f"start_iter {self.start_iter} is not inside start_epoch {self.start_epoch}.")
        logger.info("Starting training from epoch %d, iteration %d", self.start_epoch, self.start_iter)

        with EventStorage(self.start_iter) as self.storage:
            try:
                self.before_train()
                for self.epoch in range(self.start_epoch, self.max_epoch):
                    self.before_epoch()
                    epoch_end = (self.epoch + 1) * self.iters_per_epoch
                    while self.iter < epoch_end:
                        self.before_step()
                        self.run_step()
                        self.after_step()
                        self.iter += 1
                    self.after_epoch()
            except Exception:
                logger.exception("Exception during training at iteration %d:", self.iter)
                raise
            finally:
                self.after_train()

    def before_train(self) -> None:
        for h in self._hooks:
            h.before_train()

    def after_train(self) -> None:
        self.storage.iter = min(self.iter, self.max_iter - 1) if self.max_iter else 0
        for h in self._hooks:
            h.after_train()

    def before_epoch(self) -> None:
        for h in self._hooks:
            h.before_epoch()

    def after_epoch(self) -> None:
        for h in self._hooks:
            h.after_epoch()

    def before_step(self) -> None:
        # Kept equal so metrics put during the step are recorded at this iteration.
        self.storage.iter = self.iter
        for h in self._hooks:
            h.before_step()

    def after_step(self) -> None:
        for h in self._hooks:
            h.after_step()

    def run_step(self) -> None:
        raise NotImplementedError

    def state_dict(self) -> Dict[str, Any]:
        """Returns the checkpointable state of the trainer and its hooks (not the model or optimizer)."""
        hooks = {}
        for h in self._hooks:
            state = h.state_dict()
            if state:
                hooks[type(h).__qualname__] = state
        return {"hooks": hooks}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        saved = state.get("hooks", {})
        for h in self._hooks:
            key = type(h).__qualname__
            if key in saved:
                h.load_state_dict(saved[key])


def _first_param_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


class SimpleTrainer(TrainerBase):
    """One iteration: next batch, forward to a loss dict, backward of the sum, (clip), optimizer step.

    The model is called as ``model(data)`` in training mode and returns a dict of scalar losses (or one
    scalar tensor, logged as "total_loss"). Each iteration records ``loss_*`` / other loss names,
    ``total_loss`` and ``data_time`` in the event storage, averaged over processes (``data_time``: max).
    A non-finite loss on any process raises ``FloatingPointError`` on every process before the optimizer
    step, so the weights and all saved checkpoints stay those of the last good iteration.
    """

    def __init__(
        self,
        model: nn.Module,
        data_loader: Iterable,
        optimizer: torch.optim.Optimizer,
        *,
        grad_clipper: Optional[Callable[[Iterable[torch.Tensor]], None]] = None,
    ) -> None:
        """
        Args:
            model: returns a dict of scalar losses in training mode.
            data_loader: an iterable of batches, typically infinite; ``iter()`` is taken once.
            optimizer: the optimizer.
            grad_clipper: called on ``model.parameters()`` before each optimizer step (see
                ``fastreid.solver.build_grad_clipper``).
        """
        super().__init__()
        model.train()
        self.model = model
        self.data_loader = data_loader
        self._data_loader_iter_obj = None
        self.optimizer = optimizer
        self.grad_clipper = grad_clipper

    @property
    def _data_loader_iter(self):
        # Created lazily so that building the trainer does not start loader workers.
        if self._data_loader_iter_obj is None:
            self._data_loader_iter_obj = iter(self.data_loader)
        return self._data_loader_iter_obj

    def reset_data_loader(self, data_loader: Optional[Iterable] = None) -> None:
        """Drop the current iterator (stopping its workers); the next step takes a new one.

        Args:
            data_loader: a loader to use from now on; None keeps the current one (for example after its
                ``load_state_dict``, which takes effect for new iterators).
        """
        self._data_loader_iter_obj = None
        if data_loader is not None:
            self.data_loader = data_loader

    def close(self) -> None:
        """Stop the loader workers now. Training can go on afterwards, with a new iterator."""
        # Left to the garbage collector (trainers live in reference cycles), each worker would wait out a 5 s
        # shutdown timeout.
        self.reset_data_loader()

    def next_batch(self) -> Tuple[Any, float]:
        """The next batch of the loader and the seconds spent waiting for it."""
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        return data, time.perf_counter() - start

    @staticmethod
    def _as_loss_dict(output: Any) -> Dict[str, torch.Tensor]:
        if isinstance(output, torch.Tensor):
            return {"total_loss": output}
        if not isinstance(output, Mapping) or not output:
            raise TypeError(f"The model must return a non-empty dict of losses in training mode, got {type(output)}.")
        return dict(output)

    def run_step(self) -> None:
        self.train_on_batch(*self.next_batch())

    def train_on_batch(self, data: Any, data_time: float = 0.0) -> Dict[str, float]:
        """One optimisation step on ``data``: forward to a loss dict, backward of the sum, (clip), step.

        Args:
            data: a batch as the model takes it.
            data_time: seconds spent loading it (recorded as ``data_time``).

        Returns:
            The losses of this process as Python floats.
        """
        loss_dict = self._as_loss_dict(self.model(data))
        losses = sum(loss_dict.values())
        self.optimizer.zero_grad(set_to_none=True)
        losses.backward()
        metrics = self._write_metrics(loss_dict, data_time)
        if self.grad_clipper is not None:
            self.grad_clipper(self.model.parameters())
        self.optimizer.step()
        return metrics

    def _write_metrics(self, loss_dict: Dict[str, torch.Tensor], data_time: float,
                       prefix: str = "") -> Dict[str, float]:
        """Logs losses and data time, raising ``FloatingPointError`` if a loss is not finite on any rank.

        Converts all losses to Python floats in one device-to-host copy and returns this process's.
        """
        names = list(loss_dict)
        values = torch.stack([v.detach().float().reshape(()) for v in loss_dict.values()]).tolist()
        metrics = dict(zip(names, values))
        gathered = comm.all_gather((metrics, data_time)) if comm.get_world_size() > 1 else [(metrics, data_time)]
        bad = [(rank, m) for rank, (m, _) in enumerate(gathered) if not all(math.isfinite(v) for v in m.values())]
        if bad:
            raise FloatingPointError(
                f"Loss became infinite or NaN at iteration={self.iter} (epoch {self.epoch}); "
                f"losses by rank: {dict(bad)}. The optimizer step was skipped and nothing was saved."
            )
        if comm.is_main_process():
            storage = get_event_storage()
            storage.put_scalar("data_time", max(t for _, t in gathered))
            mean = {k: sum(m[k] for m, _ in gathered) / len(gathered) for k in names}
            if set(names) != {"total_loss"}:
                storage.put_scalar(f"{prefix}total_loss", sum(mean.values()))
            storage.put_scalars(**{prefix + k: v for k, v in mean.items()})
        return metrics


class AMPTrainer(SimpleTrainer):
    """:class:`SimpleTrainer` with automatic mixed precision.

    On CUDA it runs the forward pass under float16 autocast with a ``torch.amp.GradScaler`` (whose state is
    part of :meth:`state_dict`); on CPU under bfloat16 autocast without a scaler. The device type is taken
    from the model's parameters.
    """

    def __init__(
        self,
        model: nn.Module,
        data_loader: Iterable,
        optimizer: torch.optim.Optimizer,
        *,
        grad_clipper: Optional[Callable[[Iterable[torch.Tensor]], None]] = None,
        precision: Optional[torch.dtype] = None,
        grad_scaler: Optional[torch.amp.GradScaler] = None,
    ) -> None:
        """
        Args:
            model, data_loader, optimizer, grad_clipper: as in :class:`SimpleTrainer`.
            precision: autocast dtype; default float16 on CUDA, bfloat16 elsewhere.
            grad_scaler: scaler to use with float16; default a new ``torch.amp.GradScaler`` for the device.
        """
        super().__init__(model, data_loader, optimizer, grad_clipper=grad_clipper)
        self.device_type = _first_param_device(model).type
        if precision is None:
            precision = torch.float16 if self.device_type == "cuda" else torch.bfloat16
        self.precision = precision
        if precision == torch.float16 and grad_scaler is None:
            grad_scaler = torch.amp.GradScaler(self.device_type)
        self.grad_scaler = grad_scaler if precision == torch.float16 else None

    def train_on_batch(self, data: Any, data_time: float = 0.0) -> Dict[str, float]:
        with torch.autocast(device_type=self.device_type, dtype=self.precision):
            loss_dict = self._as_loss_dict(self.model(data))
            losses = sum(loss_dict.values())
        self.optimizer.zero_grad(set_to_none=True)
        if self.grad_scaler is None:
            losses.backward()
            metrics = self._write_metrics(loss_dict, data_time)
            if self.grad_clipper is not None:
                self.grad_clipper(self.model.parameters())
            self.optimizer.step()
            return metrics
        self.grad_scaler.scale(losses).backward()
        metrics = self._write_metrics(loss_dict, data_time)
        if self.grad_clipper is not None:
            self.grad_scaler.unscale_(self.optimizer)
            self.grad_clipper(self.model.parameters())
        self.grad_scaler.step(self.optimizer)
        self.grad_scaler.update()
        return metrics

    def state_dict(self) -> Dict[str, Any]:
        state = super().state_dict()
        if self.grad_scaler is not None:
            state["grad_scaler"] = self.grad_scaler.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        if self.grad_scaler is not None and "grad_scaler" in state:
            self.grad_scaler.load_state_dict(state["grad_scaler"])


def build_step(model: nn.Module, data_loader: Iterable, optimizer: torch.optim.Optimizer, *,
               precision: Optional[torch.dtype] = None,
               grad_clipper: Optional[Callable[[Iterable[torch.Tensor]], None]] = None) -> SimpleTrainer:
    """The training step of ``precision`` (a resolved MODEL.PRECISION): :class:`SimpleTrainer` for float32
    (None: no autocast), :class:`AMPTrainer` autocasting to ``precision`` otherwise."""
    if precision is None:
        return SimpleTrainer(model, data_loader, optimizer, grad_clipper=grad_clipper)
    return AMPTrainer(model, data_loader, optimizer, grad_clipper=grad_clipper, precision=precision)
