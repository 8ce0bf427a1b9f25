"""Choice of a torch optimizer's implementation (SOLVER.OPTIMIZER_IMPL): for-loop, foreach or fused."""
import functools
import inspect
import logging
from typing import Any, Dict, List, Mapping, Sequence

import torch

__all__ = ["OPTIMIZER_IMPLS", "construct_optimizer", "impl_kwargs"]

logger = logging.getLogger(__name__)

OPTIMIZER_IMPLS = ("auto", "for-loop", "foreach", "fused")

# Devices with fused kernels of the torch.optim optimizers that offer them (torch >= 2.4 for CPU).
_FUSED_DEVICES = ("cpu", "cuda")


def _accepted(cls: type) -> Sequence[str]:
    return tuple(inspect.signature(cls.__init__).parameters)


def _fused_kernels_apply(params: List[Mapping[str, Any]]) -> bool:
    # torch checks this only at the first step, too late for a fallback.
    tensors = [p for g in params for p in g["params"]]
    return all(p.is_floating_point() and p.device.type in _FUSED_DEVICES for p in tensors)


def impl_kwargs(cls: type, impl: str) -> Dict[str, Any]:
    """Constructor keyword arguments selecting ``impl`` ("for-loop", "foreach" or "fused") for ``cls``.

    Raises:
        ValueError: for an unknown ``impl``, or one that ``cls`` does not offer.
    """
    if impl not in OPTIMIZER_IMPLS[1:]:
        raise ValueError(f"SOLVER.OPTIMIZER_IMPL must be one of {OPTIMIZER_IMPLS}, got {impl!r}.")
    accepted = _accepted(cls)
    if impl == "fused":
        if "fused" not in accepted:
            raise ValueError(f"{cls.__name__} has no fused implementation: set SOLVER.OPTIMIZER_IMPL to 'auto', "
                             "'foreach' or 'for-loop'.")
        return {"fused": True}
    if "foreach" not in accepted:
        if impl == "foreach":
            raise ValueError(f"{cls.__name__} has no foreach implementation: set SOLVER.OPTIMIZER_IMPL to 'auto' "
                             "or 'for-loop'.")
        return {}  # an optimizer without the option has only its own loop
    return {"foreach": impl == "foreach"}


def construct_optimizer(
    cls: type, params: List[Mapping[str, Any]], kwargs: Mapping[str, Any], impl: str
) -> torch.optim.Optimizer:
    """``cls(params, **kwargs)`` with the implementation ``impl`` of SOLVER.OPTIMIZER_IMPL.

    "auto" takes the first of fused, foreach and for-loop that ``cls`` offers and that applies to these
    parameters (fused kernels: floating-point parameters on CPU or CUDA, and torch accepting them). Fused
    then foreach: measured several times faster than the for-loop per step on CPU (Adam, AdamW and SGD on a
    ResNet-18; rerun with ``benchmarks/bench_step.py``).

    Args:
        cls: an optimizer class.
        params: parameter groups.
        kwargs: other constructor arguments (lr, weight_decay, ...).
        impl: one of :data:`OPTIMIZER_IMPLS`.

    The choice survives ``load_state_dict`` of a checkpoint saved with another implementation.
    """
    optimizer = _construct(cls, params, kwargs, impl)
    chosen = {k: v for k, v in optimizer.defaults.items() if k in ("fused", "foreach")}
    if chosen:
        optimizer.register_load_state_dict_post_hook(functools.partial(_restore_impl, chosen=chosen))
    return optimizer


def _construct(cls: type, params: List[Mapping[str, Any]], kwargs: Mapping[str, Any], impl: str):
    if impl != "auto":
        return cls(params, **kwargs, **impl_kwargs(cls, impl))
    accepted = _accepted(cls)
    for candidate in ("fused", "foreach"):
        if candidate not in accepted or (candidate == "fused" and not _fused_kernels_apply(params)):
            continue
        try:
            # Copies: torch writes the defaults into the group dicts it is given, a failed attempt included.
            optimizer = cls([dict(g) for g in params], **kwargs, **impl_kwargs(cls, candidate))
        except (RuntimeError, ValueError) as e:  # e.g. no fused kernel for this device or dtype
            logger.info("SOLVER.OPTIMIZER_IMPL auto: %s %s is not usable here (%s)", cls.__name__, candidate, e)
            continue
        logger.info("SOLVER.OPTIMIZER_IMPL auto: %s uses its %s implementation", cls.__name__, candidate)
        return optimizer
    return cls(params, **kwargs, **impl_kwargs(cls, "for-loop"))


def _restore_impl(optimizer: torch.optim.Optimizer, chosen: Mapping[str, Any]) -> None:
    # load_state_dict restores every group option saved in the checkpoint, the implementation flags included:
    # a checkpoint of another implementation (or from before SOLVER.OPTIMIZER_IMPL) would switch it silently.
    for group in optimizer.param_groups:
        group.update(chosen)
        if not group.get("fused"):
            continue
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            step = state.get("step")
            if step is not None:  # fused kernels take the step count as a float32 tensor on the parameter's device
                state["step"] = torch.as_tensor(step, dtype=torch.float32).to(p.device)
