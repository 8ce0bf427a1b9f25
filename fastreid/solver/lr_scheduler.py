"""Learning-rate schedules: an epoch-based main schedule with an iteration-based warmup.

fast-reid counts its main schedule (multi-step or cosine) in epochs and its warmup in iterations. Both are
written here as one multiplier of the iteration, so a single torch scheduler stepped once per iteration
reproduces them and resumes from nothing more than its iteration count.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from fvcore.common.param_scheduler import (
    ConstantParamScheduler,
    ExponentialParamScheduler,
    LinearParamScheduler,
    MultiStepParamScheduler,
    ParamScheduler,
)

__all__ = [
    "EpochWarmupMultiplier",
    "LRMultiplier",
    "build_warmup_param_scheduler",
    "main_schedule_start_epoch",
    "multi_step_param_scheduler",
    "warmup_epochs",
]


def build_warmup_param_scheduler(method: str, factor: float) -> ParamScheduler:
    """Returns the warmup multiplier as a function of the warmup progress ``where`` in [0, 1).

    Args:
        method: "linear" (from ``factor`` up to 1), "constant" (``factor`` throughout) or "exp"
            (``factor ** (1 - where)``).
        factor: multiplier at the first iteration, in (0, 1].
    """
    if method == "linear":
        return LinearParamScheduler(factor, 1.0)
    if method == "constant":
        return ConstantParamScheduler(factor)
    if method == "exp":
        if factor <= 0:
            raise ValueError(f"Exponential warmup needs SOLVER.WARMUP_FACTOR > 0, got {factor}.")
        return ExponentialParamScheduler(factor, 1.0 / factor)
    raise ValueError(f"Unknown SOLVER.WARMUP_METHOD '{method}'; use 'linear', 'constant' or 'exp'.")


def multi_step_param_scheduler(
    num_epochs: int, steps: Sequence[int], gamma: float
) -> Tuple[MultiStepParamScheduler, int]:
    """The multi-step multiplier: 1, multiplied by ``gamma`` at each epoch in ``steps``.

    Args:
        num_epochs: length of the main schedule in epochs (>= 1).
        steps: milestone epochs, counted from the start of the main schedule; those <= 0 are ignored.
        gamma: decay factor.

    Returns:
        (scheduler, span): evaluate ``scheduler(min(k, span) / span)`` at ``k`` epochs into the main schedule.
    """
    steps = sorted(int(s) for s in steps if int(s) > 0)
    # Milestones past the end simply never fire, as with torch's MultiStepLR.
    span = max(int(num_epochs), steps[-1] + 1 if steps else 1, len(steps) + 1)
    values = [gamma**i for i in range(len(steps) + 1)]
    return MultiStepParamScheduler(values, num_updates=span, milestones=steps), span


def main_schedule_start_epoch(delay_epochs: int, warmup_iters: int, iters_per_epoch: int) -> int:
    """Epoch at which the main schedule is at its step 0 for the last time (fast-reid's convention).

    fast-reid steps its main schedule at the end of an epoch only once warmup is over and the epoch
    number exceeds DELAY_EPOCHS, so the main schedule is ``k = max(0, epoch - start)`` epochs in,
    with ``start = max(DELAY_EPOCHS, epoch holding the last warmup iteration)``.
    """
    last_warmup_epoch = (warmup_iters - 1) // iters_per_epoch if warmup_iters > 0 else -1
    return max(int(delay_epochs), last_warmup_epoch)


class EpochWarmupMultiplier:
    """Learning-rate multiplier at a global iteration: ``warmup(iter) * main(epoch)``.

    ``warmup(i) = warmup_sched(i / warmup_iters)`` for ``i < warmup_iters`` and 1 afterwards;
    ``main = main_sched(min(k, span) / span)`` with ``k = max(0, i // iters_per_epoch - start_epoch)``.
    """

    def __init__(
        self,
        main_sched: ParamScheduler,
        main_span: int,
        start_epoch: int,
        iters_per_epoch: int,
        warmup_sched: Optional[ParamScheduler] = None,
        warmup_iters: int = 0,
    ) -> None:
        """
        Args:
            main_sched: main multiplier of the progress in [0, 1].
            main_span: epochs covered by ``main_sched``'s progress from 0 to 1.
            start_epoch: last epoch at which the main schedule is at step 0.
            iters_per_epoch: iterations per epoch.
            warmup_sched: warmup multiplier of the warmup progress in [0, 1); None = no warmup.
            warmup_iters: warmup length in iterations.
        """
        if iters_per_epoch < 1:
            raise ValueError(f"iters_per_epoch must be >= 1, got {iters_per_epoch}.")
        self._main = main_sched
        self._span = max(int(main_span), 1)
        self._start_epoch = int(start_epoch)
        self._iters_per_epoch = int(iters_per_epoch)
        self._warmup = warmup_sched if warmup_iters > 0 else None
        self._warmup_iters = int(warmup_iters)

    def __call__(self, iteration: int) -> float:
        epochs_in = max(0, iteration // self._iters_per_epoch - self._start_epoch)
        value = self._main(min(epochs_in, self._span) / self._span)
        if self._warmup is not None and iteration < self._warmup_iters:
            value *= self._warmup(iteration / self._warmup_iters)
        return value


class LRMultiplier(torch.optim.lr_scheduler.LRScheduler):
    """Sets each group's learning rate to its initial value times ``multiplier(iteration)``.

    Step it once per iteration, after ``optimizer.step()``. Its state is the iteration count and the base
    learning rates only (plain numbers), so a checkpoint holding it loads with ``weights_only=True``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, multiplier, last_epoch: int = -1) -> None:
        """
        Args:
            optimizer: the optimizer whose groups' ``lr`` are set.
            multiplier: callable mapping the iteration (int >= 0) to a float multiplier.
            last_epoch: index of the last iteration done; -1 for a fresh run.
        """
        self._multiplier = multiplier
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:
        factor = self._multiplier(self.last_epoch)
        return [base_lr * factor for base_lr in self.base_lrs]

    def state_dict(self) -> Dict[str, object]:
        return {"base_lrs": list(self.base_lrs), "last_epoch": self.last_epoch, "_step_count": self._step_count}

    def load_state_dict(self, state_dict: Dict[str, object]) -> None:
        super().load_state_dict(dict(state_dict))
        # Set the optimizer's lr now: a resumed run's first iteration must not use the freshly built value.
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


def warmup_epochs(warmup_iters: int, iters_per_epoch: int) -> int:
    """Number of epochs touched by warmup, rounded up."""
    return math.ceil(warmup_iters / iters_per_epoch) if warmup_iters > 0 else 0
