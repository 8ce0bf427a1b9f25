import json
import math

import pytest
import torch
from torch import nn

from fastreid.config import get_cfg
from fastreid.engine import hooks
from fastreid.engine.train_loop import AMPTrainer, HookBase, SimpleTrainer
from fastreid.solver import build_lr_scheduler, build_optimizer
from fastreid.utils.checkpoint import Checkpointer
from fastreid.utils.events import JSONWriter


class _Toy(nn.Module):
    """Linear regression with dropout, so the run also depends on the torch RNG."""

    def __init__(self, nan_at=None):
        super().__init__()
        self.backbone = nn.Linear(4, 8)
        self.heads = nn.Linear(8, 1)
        self.nan_at = nan_at
        self.calls = 0
        self.autocast_dtypes = []

    def forward(self, batch):
        x, y = batch
        self.autocast_dtypes.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)
        out = self.heads(nn.functional.dropout(torch.relu(self.backbone(x)), 0.2, self.training))
        loss = ((out.float().squeeze(1) - y) ** 2).mean()
        if self.nan_at is not None and self.calls == self.nan_at:
            loss = loss * float("nan")
        self.calls += 1
        return {"loss_mse": loss, "loss_l1": out.abs().mean() * 0.01}


def _data():
    w = torch.tensor([1.0, -2.0, 0.5, 3.0])
    while True:
        x = torch.randn(8, 4)
        yield x, x @ w


def _cfg():
    cfg = get_cfg()
    cfg.SOLVER.merge_from_list(["OPT", "SGD", "BASE_LR", 0.05, "MAX_EPOCH", 4, "WARMUP_ITERS", 3,
                                "STEPS", [2], "MOMENTUM", 0.9])
    return cfg


def _build(cfg, iters_per_epoch, out_dir, trainer_cls=SimpleTrainer, seed=0, **kw):
    torch.manual_seed(seed)
    model = _Toy(**kw)
    opt = build_optimizer(cfg, model)
    sched = build_lr_scheduler(cfg, opt, iters_per_epoch)
    trainer = trainer_cls(model, _data(), opt)
    ckpt = Checkpointer(model, str(out_dir), save_to_disk=True, optimizer=opt, scheduler=sched, trainer=trainer)
    return trainer, sched, ckpt


class _Recorder(HookBase):
    def __init__(self):
        self.calls = []

    def before_train(self):
        self.calls.append("before_train")

    def before_epoch(self):
        self.calls.append(("before_epoch", self.trainer.epoch))

    def after_step(self):
        assert self.trainer.storage.iter == self.trainer.iter
        self.calls.append(("step", self.trainer.epoch, self.trainer.iter))

    def after_epoch(self):
        self.calls.append("after_epoch")

    def after_train(self):
        self.calls.append(("after_train", self.trainer.iter))


def test_simple_trainer_counts_epochs_and_writes_metrics(tmp_path):
    cfg = _cfg()
    trainer, sched, _ = _build(cfg, 3, tmp_path)
    rec = _Recorder()
    trainer.register_hooks([hooks.IterationTimer(), hooks.LRScheduler(trainer.optimizer, sched), rec,
                            hooks.PeriodicWriter([JSONWriter(str(tmp_path / "metrics.json"))], period=2)])
    trainer.train(0, 2, 3)
    steps = [c for c in rec.calls if c[0] == "step"]
    assert steps == [("step", e, i) for i in range(6) for e in [i // 3]]
    assert rec.calls[0] == "before_train" and rec.calls[-1] == ("after_train", 6)
    assert rec.calls.count("after_epoch") == 2 and trainer.max_iter == 6
    lines = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    assert [ln["iteration"] for ln in lines] == [1, 2, 3, 5]  # period 2 plus epoch ends
    for key in ("loss_mse", "loss_l1", "total_loss", "data_time", "lr", "time"):
        assert key in lines[-1], key
    assert lines[0]["lr"] == pytest.approx(0.05 * (0.1 + 0.9 * 1 / 3))  # lr of iteration 1 (warmup)
    last = trainer.storage.history("total_loss").latest()
    assert last == pytest.approx(trainer.storage.history("loss_mse").latest()
                                 + trainer.storage.history("loss_l1").latest())


def test_non_finite_loss_raises_before_step_and_save(tmp_path):
    cfg = _cfg()
    trainer, sched, ckpt = _build(cfg, 3, tmp_path, nan_at=4)
    trainer.register_hooks([hooks.LRScheduler(trainer.optimizer, sched),
                            hooks.PeriodicCheckpointer(ckpt, 1, iter_period=1)])
    snapshot = {}
    trainer.register_hooks([hooks.CallbackHook(after_step=lambda t: snapshot.update(
        {k: v.clone() for k, v in t.model.state_dict().items()}))])
    with pytest.raises(FloatingPointError, match=r"iteration=4.*loss_mse.*nan"):
        trainer.train(0, 4, 3)
    assert (tmp_path / "last_checkpoint").read_text() == "model_iter_0000003.pth"
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, snapshot[k]), k  # the bad iteration changed nothing
    assert not (tmp_path / "model_final.pth").exists()


def test_amp_trainer_uses_bfloat16_autocast_on_cpu(tmp_path):
    trainer, sched, _ = _build(_cfg(), 2, tmp_path, trainer_cls=AMPTrainer)
    assert trainer.grad_scaler is None and trainer.precision == torch.bfloat16
    before = trainer.model.heads.weight.clone()
    trainer.train(0, 1, 2)
    assert trainer.model.autocast_dtypes == [torch.bfloat16, torch.bfloat16]
    assert not torch.equal(before, trainer.model.heads.weight)
    assert math.isfinite(trainer.storage.history("total_loss").latest())


def test_amp_trainer_grad_scaler_state_is_checkpointed():
    model = _Toy()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=64.0)
    trainer = AMPTrainer(model, _data(), opt, precision=torch.float16, grad_scaler=scaler)
    state = trainer.state_dict()
    assert state["grad_scaler"]["scale"] == 64.0
    scaler2 = torch.amp.GradScaler("cpu", init_scale=2.0)
    trainer2 = AMPTrainer(_Toy(), _data(), torch.optim.SGD(model.parameters(), lr=0.1),
                          precision=torch.float16, grad_scaler=scaler2)
    trainer2.load_state_dict(state)
    assert scaler2.get_scale() == 64.0


def _run(tmp_path, start_epoch, max_epoch, resume, ipe=3):
    cfg = _cfg()
    trainer, sched, ckpt = _build(cfg, ipe, tmp_path, seed=1 if resume else 0)
    trainer.register_hooks([hooks.LRScheduler(trainer.optimizer, sched),
                            hooks.PeriodicCheckpointer(ckpt, 1)])
    start_iter = None
    if resume:
        extra = ckpt.resume_or_load("", resume=True)
        start_iter = extra["iteration"] + 1
        start_epoch = start_iter // ipe
    trainer.train(start_epoch, max_epoch, ipe, start_iter=start_iter)
    return trainer.model


def test_resume_matches_straight_run(tmp_path):
    straight = _run(tmp_path / "a", 0, 4, resume=False)
    # first half, then a fresh process state resumes from the last checkpoint (epoch 1 -> iteration 5)
    _run(tmp_path / "b", 0, 2, resume=False)
    torch.manual_seed(999)  # the resumed run must not depend on the RNG state before loading
    resumed = _run(tmp_path / "b", 0, 4, resume=True)
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k


def test_resume_from_iteration_checkpoint_inside_an_epoch(tmp_path):
    trainer, sched, ckpt = _build(_cfg(), 4, tmp_path)
    trainer.register_hooks([hooks.LRScheduler(trainer.optimizer, sched)])
    trainer.train(1, 3, 4, start_iter=6)
    assert trainer.iter == 12 and trainer.model.calls == 6
    with pytest.raises(ValueError, match="start_iter"):
        trainer.train(1, 3, 4, start_iter=9)


def test_train_on_batch_is_one_step_of_the_loop(tmp_path):
    """``run_step`` is ``train_on_batch(*next_batch())``: the same weights and returned losses either way."""
    from fastreid.utils.events import EventStorage

    cfg = _cfg()
    looped, _, _ = _build(cfg, 4, tmp_path / "a")
    manual, _, _ = _build(cfg, 4, tmp_path / "b")
    with EventStorage(0):
        torch.manual_seed(1)
        looped.run_step()
        torch.manual_seed(1)
        batch, waited = manual.next_batch()
        losses = manual.train_on_batch(batch, waited)
    assert set(losses) == {"loss_mse", "loss_l1"} and all(math.isfinite(v) for v in losses.values())
    for a, b in zip(looped.model.parameters(), manual.model.parameters()):
        assert torch.equal(a, b)
