import math

import pytest
import torch
from fvcore.common.param_scheduler import LinearParamScheduler

from fastreid.config import get_cfg
from fastreid.solver import LR_SCHEDULER_REGISTRY, build_lr_scheduler


def _cfg(**solver):
    cfg = get_cfg()
    cfg.SOLVER.BASE_LR = 0.1
    cfg.SOLVER.BIAS_LR_FACTOR = 1.0
    for k, v in solver.items():
        setattr(cfg.SOLVER, k, v)
    return cfg


def _run(cfg, iters_per_epoch, lrs=(0.1,)):
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in lrs]
    opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)], lr=lrs[0])
    sched = build_lr_scheduler(cfg, opt, iters_per_epoch)
    seen = []
    for _ in range(cfg.SOLVER.MAX_EPOCH * iters_per_epoch):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return seen, opt, sched


def _warmup(method, f, i, w):
    if i >= w:
        return 1.0
    a = i / w
    return {"linear": f * (1 - a) + a, "constant": f, "exp": f ** (1 - a)}[method]


@pytest.mark.parametrize("method", ["linear", "constant", "exp"])
def test_warmup_delay_multistep_matches_closed_form(method):
    # 4 iters/epoch, warmup 6 iters (last warmup iter in epoch 1), delay 2 epochs -> main starts after epoch 2.
    cfg = _cfg(MAX_EPOCH=10, WARMUP_ITERS=6, WARMUP_FACTOR=0.2, WARMUP_METHOD=method, DELAY_EPOCHS=2,
               SCHED="MultiStepLR", STEPS=[2, 5], GAMMA=0.5)
    seen, _, _ = _run(cfg, 4)
    for i, (lr,) in enumerate(seen):
        k = max(0, i // 4 - 2)
        main = 0.5 ** sum(k >= s for s in (2, 5))
        assert lr == pytest.approx(0.1 * main * _warmup(method, 0.2, i, 6), rel=1e-9), i
    # spot values: constant during delay epochs, first decay at epoch 2 + 2
    assert seen[8][0] == pytest.approx(0.1) and seen[4 * 4][0] == pytest.approx(0.05)
    assert seen[4 * 7][0] == pytest.approx(0.025)


def test_main_schedule_waits_for_warmup_like_fast_reid():
    # no delay, warmup spanning into epoch 2 (iters 0..9, 4 iters/epoch): main step 1 is at epoch 3.
    cfg = _cfg(MAX_EPOCH=6, WARMUP_ITERS=10, WARMUP_FACTOR=0.1, DELAY_EPOCHS=0, STEPS=[1], GAMMA=0.1)
    seen, _, _ = _run(cfg, 4)
    assert seen[11][0] == pytest.approx(0.1) and seen[12][0] == pytest.approx(0.01)


def test_cosine_matches_closed_form_and_groups_scale():
    cfg = _cfg(MAX_EPOCH=8, WARMUP_ITERS=3, WARMUP_FACTOR=0.1, DELAY_EPOCHS=3, SCHED="CosineAnnealingLR",
               ETA_MIN_LR=0.001)
    seen, _, _ = _run(cfg, 3, lrs=(0.1, 0.2))
    T = 8 - max(1, 3)
    r = 0.001 / 0.1
    for i, lrs in enumerate(seen):
        k = max(0, i // 3 - 3)
        main = r + (1 - r) * (1 + math.cos(math.pi * k / T)) / 2
        w = _warmup("linear", 0.1, i, 3)
        assert lrs == pytest.approx([0.1 * main * w, 0.2 * main * w], rel=1e-9), i


def test_cosine_reaches_eta_min_when_warmup_dominates():
    cfg = _cfg(MAX_EPOCH=5, WARMUP_ITERS=4, DELAY_EPOCHS=0, SCHED="CosineAnnealingLR", ETA_MIN_LR=0.002)
    seen, _, _ = _run(cfg, 2)  # warmup epochs 0-1, T = 5 - 2 = 3, k at last epoch = 4 - 1 = 3
    assert seen[-1][0] == pytest.approx(0.002)


def test_state_dict_resumes_and_is_plain():
    cfg = _cfg(MAX_EPOCH=6, WARMUP_ITERS=5, STEPS=[2], GAMMA=0.1)
    straight, _, _ = _run(cfg, 3)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = build_lr_scheduler(cfg, opt, 3)
    for _ in range(7):
        opt.step()
        sched.step()
    state = sched.state_dict()
    assert set(state) == {"base_lrs", "last_epoch", "_step_count"}
    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched2 = build_lr_scheduler(cfg, opt2, 3)
    sched2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == pytest.approx(straight[7][0])
    opt2.step()
    sched2.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(straight[8][0])


def test_unknown_names_raise():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="SOLVER.SCHED"):
        build_lr_scheduler(_cfg(SCHED="Nope"), opt, 2)
    with pytest.raises(ValueError, match="WARMUP_METHOD"):
        build_lr_scheduler(_cfg(WARMUP_METHOD="nope"), opt, 2)


@pytest.fixture
def linear_decay_schedule():
    """A schedule registered for the test: linear from 1 down to 0 over the main schedule's epochs."""

    @LR_SCHEDULER_REGISTRY.register()
    def LinearDecayTestLR(cfg, num_epochs):
        return LinearParamScheduler(1.0, 0.0), num_epochs

    yield "LinearDecayTestLR"
    del LR_SCHEDULER_REGISTRY._obj_map["LinearDecayTestLR"]


def test_registered_schedule_is_chosen_by_name_with_warmup_and_delay(linear_decay_schedule):
    # 2 iters/epoch, warmup 3 iters (2 epochs), delay 1 epoch: T = 8 - 2 = 6 epochs, main starts after epoch 1.
    cfg = _cfg(MAX_EPOCH=8, WARMUP_ITERS=3, WARMUP_FACTOR=0.5, DELAY_EPOCHS=1, SCHED=linear_decay_schedule)
    seen, _, _ = _run(cfg, 2)
    for i, (lr,) in enumerate(seen):
        k = max(0, i // 2 - 1)
        assert lr == pytest.approx(0.1 * (1 - k / 6) * _warmup("linear", 0.5, i, 3), rel=1e-9), i
    assert seen[3][0] == pytest.approx(0.1) and seen[4][0] == pytest.approx(0.1 * 5 / 6) and seen[-1][0] == 0.0


def test_registry_names_the_built_in_schedules_and_checks_entries(linear_decay_schedule, monkeypatch):
    assert {"MultiStepLR", "CosineAnnealingLR", linear_decay_schedule} <= set(LR_SCHEDULER_REGISTRY.names())
    monkeypatch.setitem(LR_SCHEDULER_REGISTRY._obj_map, "MalformedTestLR", lambda cfg, n: LinearParamScheduler(1, 0))
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="SOLVER.SCHED 'CosineLR'.*CosineAnnealingLR.*MultiStepLR"):
        build_lr_scheduler(_cfg(SCHED="CosineLR"), opt, 2)
    with pytest.raises(TypeError, match="MalformedTestLR.*ParamScheduler"):
        build_lr_scheduler(_cfg(SCHED="MalformedTestLR"), opt, 2)


def test_multistep_without_steps_is_constant_to_the_end():
    cfg = _cfg(MAX_EPOCH=4, WARMUP_ITERS=0, SCHED="MultiStepLR", STEPS=[])
    seen, opt, _ = _run(cfg, 2)  # steps the scheduler past the last iteration, where the schedule ends
    assert [lr for (lr,) in seen] + [opt.param_groups[0]["lr"]] == [pytest.approx(0.1)] * 9
