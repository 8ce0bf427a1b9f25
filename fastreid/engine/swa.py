"""Stochastic weight averaging (Izmailov et al. 2018) over the last iterations of training (SOLVER.SWA.*)."""
import logging
import math
from typing import Any, Callable, Dict, List, Mapping, Optional

from torch import nn
from torch.optim.swa_utils import AveragedModel

from .ddp import unwrap_model
from .train_loop import HookBase

__all__ = ["SWA"]

logger = logging.getLogger(__name__)


class SWA(HookBase):
    """Averages the model's weights over the last ``swa_iters`` iterations and trains on with the average.

    Every ``period`` iterations of that window the current weights join a running average
    (``torch.optim.swa_utils.AveragedModel``). With ``lr_sched`` the learning rate follows a cosine cycle per
    period, from each group's base rate times ``lr_factor`` down to ``eta_min_lr``. After the last iteration the
    averaged weights replace the model's and ``update_bn`` (e.g. a precise-BN pass) recomputes normalization
    statistics for them. Register it before the evaluation and checkpoint hooks, so that the final evaluation
    and ``model_final.pth`` see the averaged model.
    """

    def __init__(
        self,
        model: nn.Module,
        swa_iters: int,
        period: int,
        *,
        lr_factor: float = 10.0,
        eta_min_lr: float = 3.5e-6,
        lr_sched: bool = False,
        update_bn: Optional[Callable[[], None]] = None,
    ) -> None:
        """
        Args:
            model: the trained model (a DDP wrapper is fine: its ``module`` is averaged).
            swa_iters: length of the averaging window at the end of training (SOLVER.SWA.ITER).
            period: iterations between two averaged snapshots (SOLVER.SWA.PERIOD).
            lr_factor: multiplier of the base learning rate at the start of each cycle (SOLVER.SWA.LR_FACTOR).
            eta_min_lr: learning rate at the end of each cycle (SOLVER.SWA.ETA_MIN_LR).
            lr_sched: use the cyclic schedule in the window (SOLVER.SWA.LR_SCHED); else the main schedule goes on.
            update_bn: called once the averaged weights are in place.
        """
        if swa_iters < 1 or period < 1:
            raise ValueError(f"SOLVER.SWA.ITER ({swa_iters}) and SOLVER.SWA.PERIOD ({period}) must be >= 1")
        self.model = unwrap_model(model)
        self.swa_iters = int(swa_iters)
        self.period = int(period)
        self.lr_factor = float(lr_factor)
        self.eta_min_lr = float(eta_min_lr)
        self.lr_sched = bool(lr_sched)
        self.update_bn = update_bn
        self.averaged = AveragedModel(self.model, use_buffers=False)
        self._base_lrs: List[float] = []

    @property
    def start_iter(self) -> int:
        return max(0, self.trainer.max_iter - self.swa_iters)

    def before_train(self) -> None:
        self._base_lrs = [g.get("initial_lr", g["lr"]) for g in self.trainer.optimizer.param_groups]

    def before_step(self) -> None:
        offset = self.trainer.iter - self.start_iter
        if self.lr_sched and offset >= 0:
            phase = (offset % self.period) / self.period
            for group, base in zip(self.trainer.optimizer.param_groups, self._base_lrs):
                top = base * self.lr_factor
                group["lr"] = self.eta_min_lr + (top - self.eta_min_lr) * (1 + math.cos(math.pi * phase)) / 2

    def after_step(self) -> None:
        offset = self.trainer.iter - self.start_iter
        if offset >= 0 and (offset + 1) % self.period == 0:
            self.averaged.update_parameters(self.model)
        if self.trainer.iter == self.trainer.max_iter - 1 and int(self.averaged.n_averaged) > 0:
            logger.info("SWA: using the average of %d snapshots", int(self.averaged.n_averaged))
            for target, source in zip(self.model.parameters(), self.averaged.module.parameters()):
                target.data.copy_(source.data)
            if self.update_bn is not None:
                self.update_bn()

    def state_dict(self) -> Dict[str, Any]:
        return {"averaged": self.averaged.state_dict()} if int(self.averaged.n_averaged) > 0 else {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "averaged" in state:
            self.averaged.load_state_dict(state["averaged"])
