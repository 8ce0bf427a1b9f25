"""A training hook. CHANGE: do your own per-step or per-epoch work, or delete the file."""
import time
from typing import Optional

from fastreid.engine import HookBase

__all__ = ["ElapsedTimeHook"]


class ElapsedTimeHook(HookBase):
    """Every ``period`` iterations, put the seconds since training started as the scalar "elapsed_time".

    Hooks have no registry: train_net.py adds them in ``build_hooks``. Use only the documented trainer
    attributes (``model``, ``optimizer``, ``data_loader``, ``cfg``, ``iter``, ``epoch``, ``max_iter``,
    ``iters_per_epoch``, ``storage``, ``checkpointer``).

    Args:
        period: iterations between two measurements.
    """

    def __init__(self, period: int) -> None:
        if period <= 0:
            raise ValueError(f"period must be positive, got {period}")
        self.period = period
        self.start: Optional[float] = None

    def before_train(self) -> None:
        self.start = time.perf_counter()

    def after_step(self) -> None:
        if (self.trainer.iter + 1) % self.period == 0:
            self.trainer.storage.put_scalar("elapsed_time", time.perf_counter() - self.start, smoothing_hint=False)
