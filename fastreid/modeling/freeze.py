"""Freezing named parts of a model for a while (MODEL.FREEZE_LAYERS with SOLVER.FREEZE_ITERS).

As in fast-reid's recipes (``FREEZE_LAYERS: [backbone]``), the named modules are the ones frozen: their
parameters stop receiving gradients and their norm layers stop updating statistics, so the heads can warm up on
a fixed pretrained backbone.
"""
import logging
from dataclasses import dataclass
from typing import Dict, Iterable, List

from torch import nn

__all__ = ["FrozenLayers", "freeze_layers", "select_modules", "unfreeze_layers"]

logger = logging.getLogger(__name__)


def select_modules(model: nn.Module, names: Iterable[str]) -> Dict[str, nn.Module]:
    """The modules of ``model`` with the given dotted names (e.g. "backbone", "b1", "heads.b21").

    Empty names (the config default ``[""]``) are ignored.

    Raises:
        KeyError: for a name that is not a sub-module, listing the top-level modules.
    """
    named = dict(model.named_modules())
    selected = {}
    for name in names:
        if not name:
            continue
        if name not in named:
            top = [n for n, _ in model.named_children()]
            raise KeyError(f"MODEL.FREEZE_LAYERS names '{name}', which is not a module of the model; top-level: {top}")
        selected[name] = named[name]
    return selected


@dataclass
class FrozenLayers:
    """What :func:`freeze_layers` froze: parameter names it switched off and the modules by name."""

    params: List[str]
    modules: Dict[str, nn.Module]


def freeze_layers(model: nn.Module, names: Iterable[str]) -> FrozenLayers:
    """Freeze the named modules: ``requires_grad`` off and eval mode (norm statistics fixed).

    ``model.train()`` puts the modules back into training mode, so a trainer that calls it every iteration
    should call :meth:`nn.Module.eval` on ``result.modules`` again after it while the freeze lasts.

    Returns:
        The parameters switched off (only those that were trainable), to hand to :func:`unfreeze_layers`.
    """
    modules = select_modules(model, names)
    frozen = []
    params = dict(model.named_parameters())
    for prefix, module in modules.items():
        module.eval()
        for pname, p in module.named_parameters():
            full = f"{prefix}.{pname}"
            if p.requires_grad and full in params:
                p.requires_grad_(False)
                frozen.append(full)
    logger.info("Froze %d parameters in %s", len(frozen), sorted(modules))
    return FrozenLayers(frozen, modules)


def unfreeze_layers(model: nn.Module, frozen: FrozenLayers) -> None:
    """Undo :func:`freeze_layers`: re-enable exactly the parameters it froze and restore the training mode."""
    params = dict(model.named_parameters())
    for name in frozen.params:
        params[name].requires_grad_(True)
    for module in frozen.modules.values():
        module.train(model.training)
    logger.info("Unfroze %d parameters", len(frozen.params))
