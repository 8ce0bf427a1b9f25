"""SOLVER.OPTIMIZER_IMPL: the optimizer is built with the chosen implementation, and all give the same updates."""
import copy

import pytest
import torch
from torch import nn

from fastreid.config import get_cfg
from fastreid.solver import OPTIMIZER_REGISTRY, build_optimizer

IMPLS = ("for-loop", "foreach", "fused")


def _model():
    torch.manual_seed(0)
    # No conv bias before the norm: its gradient would be rounding noise, which Adam amplifies to +-lr.
    return nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))


def _cfg(opt: str, impl: str):
    cfg = get_cfg()
    cfg.SOLVER.OPT, cfg.SOLVER.OPTIMIZER_IMPL = opt, impl
    cfg.SOLVER.BASE_LR, cfg.SOLVER.WEIGHT_DECAY, cfg.SOLVER.BIAS_LR_FACTOR = 0.01, 1e-3, 2.0
    return cfg


def _impl_of(optimizer) -> str:
    groups = optimizer.param_groups
    if all(g.get("fused") for g in groups):
        return "fused"
    return "foreach" if all(g.get("foreach") for g in groups) else "for-loop"


def _train(opt: str, impl: str, steps: int = 4):
    model = _model()
    optimizer = build_optimizer(_cfg(opt, impl), model)
    torch.manual_seed(1)
    for _ in range(steps):
        loss = model(torch.randn(2, 3, 8, 8)).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return optimizer, [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("opt", ["Adam", "AdamW", "SGD"])
def test_implementations_honoured_and_give_the_same_parameters(opt):
    reference_opt, reference = _train(opt, "for-loop")
    assert _impl_of(reference_opt) == "for-loop"
    for impl in IMPLS[1:]:
        optimizer, params = _train(opt, impl)
        assert _impl_of(optimizer) == impl
        initial = [p.detach() for p in _model().parameters()]
        assert any(not torch.equal(a, b) for a, b in zip(params, initial))  # the steps moved the weights
        for a, b in zip(params, reference):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_auto_prefers_fused_on_cpu():
    assert _impl_of(build_optimizer(_cfg("Adam", "auto"), _model())) == "fused"


def test_auto_falls_back_when_fused_is_refused():
    # Fused kernels exist for floating-point parameters only; torch refuses others at construction.
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(3, dtype=torch.complex64))

    optimizer = build_optimizer(_cfg("Adam", "auto"), Odd())
    assert _impl_of(optimizer) in ("foreach", "for-loop")
    assert not any(g.get("fused") for g in optimizer.param_groups)


def test_unknown_or_unsupported_impl_is_a_clear_error():
    with pytest.raises(ValueError, match="OPTIMIZER_IMPL must be one of"):
        build_optimizer(_cfg("Adam", "fastest"), _model())

    @OPTIMIZER_REGISTRY.register()
    class PlainLoopSGD(torch.optim.SGD):
        def __init__(self, params, lr, weight_decay=0.0):
            super().__init__(params, lr=lr, weight_decay=weight_decay)

    try:
        with pytest.raises(ValueError, match="PlainLoopSGD has no fused"):
            build_optimizer(_cfg("PlainLoopSGD", "fused"), _model())
        assert isinstance(build_optimizer(_cfg("PlainLoopSGD", "auto"), _model()), PlainLoopSGD)
    finally:
        OPTIMIZER_REGISTRY._obj_map.pop("PlainLoopSGD", None)


def _resume(impl: str, checkpoint, weights, data):
    """One step of an ``impl`` optimizer resumed from ``checkpoint`` on a model holding ``weights``."""
    model = _model()
    with torch.no_grad():
        for p, value in zip(model.parameters(), weights):
            p.copy_(value)
    optimizer = build_optimizer(_cfg("Adam", impl), model)
    optimizer.load_state_dict(copy.deepcopy(checkpoint))  # torch would share (and update) the saved tensors
    optimizer.zero_grad(set_to_none=True)
    model(data).square().mean().backward()
    optimizer.step()
    return optimizer, [p.detach() for p in model.parameters()]


def test_loading_a_checkpoint_of_another_implementation_keeps_the_chosen_one():
    saved_opt, weights = _train("Adam", "for-loop", steps=2)
    data = torch.randn(2, 3, 8, 8)
    _, reference = _resume("for-loop", saved_opt.state_dict(), weights, data)
    optimizer, params = _resume("fused", saved_opt.state_dict(), weights, data)
    assert _impl_of(optimizer) == "fused"
    for a, b in zip(params, reference):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
