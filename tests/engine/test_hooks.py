import json
import logging

import pytest
import torch
from torch import nn

from fastreid.engine import hooks
from fastreid.engine.train_loop import SimpleTrainer
from fastreid.utils.checkpoint import Checkpointer
from fastreid.utils.events import JSONWriter


class _Heads(nn.Module):
    def __init__(self):
        super().__init__()
        self.bnneck = nn.BatchNorm1d(6)
        self.classifier = nn.Linear(6, 3)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6))
        self.heads = _Heads()

    def forward(self, batch):
        x, y = batch
        logits = self.heads.classifier(self.heads.bnneck(self.backbone(x)))
        return {"loss_cls": nn.functional.cross_entropy(logits, y)}


def _data(shift=0.0):
    g = torch.Generator().manual_seed(0)
    while True:
        yield torch.randn(8, 4, generator=g) + shift, torch.randint(0, 3, (8,), generator=g)


def _trainer(model=None):
    torch.manual_seed(0)
    model = model or _Net()
    return SimpleTrainer(model, _data(), torch.optim.SGD(model.parameters(), lr=0.1))


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_layer_freeze_then_open_and_last_iters_classifier_freeze():
    trainer = _trainer()
    model = trainer.model
    states = {}
    trainer.register_hooks([
        hooks.LayerFreeze(model, ["backbone", ""], freeze_iters=3, fc_freeze_iters=2),
        hooks.CallbackHook(after_step=lambda t: states.__setitem__(
            t.iter, (_state(model.backbone), _state(model.heads.classifier), model.backbone[1].training))),
    ])
    init_backbone = _state(model.backbone)
    trainer.train(0, 4, 2)  # 8 iterations
    for it in range(3):
        assert _same(states[it][0], init_backbone)  # weights and BN running stats untouched
        assert states[it][2] is False
    assert not _same(states[3][0], init_backbone) and states[3][2] is True
    assert not _same(states[5][1], states[4][1])
    assert _same(states[6][1], states[5][1]) and _same(states[7][1], states[5][1])  # last 2 iters frozen
    assert not _same(states[7][0], states[6][0])


def test_layer_freeze_rejects_unknown_module_names():
    model = _trainer().model
    with pytest.raises(KeyError, match="missing"):
        hooks.LayerFreeze(model, ["backbone", "missing"], freeze_iters=3)
    with pytest.raises(KeyError, match="fc"):
        hooks.LayerFreeze(model, ["backbone"], freeze_iters=0, fc_freeze_iters=2, classifier="fc")


def test_eval_hook_best_checkpointer_and_writer(tmp_path):
    trainer = _trainer()
    ckpt = Checkpointer(trainer.model, str(tmp_path), save_to_disk=True, trainer=trainer)
    results = iter([0.5, 0.7, 0.6, 0.9])
    calls = []

    def evaluate():
        calls.append(trainer.iter)
        return {"Market1501": {"metric": next(results), "Rank-1": 1.0}}

    best = hooks.BestCheckpointer(ckpt, "Market1501/metric")
    trainer.register_hooks([
        hooks.EvalHook(2, evaluate), best, hooks.PeriodicCheckpointer(ckpt, 2),
        hooks.PeriodicWriter([JSONWriter(str(tmp_path / "metrics.json"))], period=100),
    ])
    trainer.train(0, 7, 2)  # epochs 1, 3, 5 by period and the final epoch 6
    assert calls == [3, 7, 11, 13]
    lines = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    evals = [(ln["iteration"], ln["Market1501/metric"]) for ln in lines if "Market1501/metric" in ln]
    assert evals == [(3, 0.5), (7, 0.7), (11, 0.6), (13, 0.9)]
    saved = torch.load(tmp_path / "model_best.pth", weights_only=True)
    assert saved["iteration"] == 13 and saved["best_Market1501_metric"] == 0.9
    assert best.best_value == 0.9 and trainer.state_dict()["hooks"]["BestCheckpointer"]["best_iter"] == 13
    assert (tmp_path / "last_checkpoint").read_text() == "model_final.pth"
    assert sorted(p.name for p in tmp_path.glob("model_*.pth")) == [
        "model_0001.pth", "model_0003.pth", "model_0005.pth", "model_best.pth", "model_final.pth"]


def test_best_checkpointer_resumes_its_best_value(tmp_path):
    trainer = _trainer()
    ckpt = Checkpointer(trainer.model, str(tmp_path), save_to_disk=True)
    best = hooks.BestCheckpointer(ckpt, "m", mode="min")
    trainer.register_hooks([best])
    trainer.load_state_dict({"hooks": {"BestCheckpointer": {"best_value": 0.1, "best_iter": 5}}})
    trainer.register_hooks([hooks.EvalHook(1, lambda: {"m": 0.2})])
    trainer._hooks.reverse()  # eval first
    trainer.train(0, 1, 2)
    assert best.best_value == 0.1 and not (tmp_path / "model_best.pth").exists()


def test_periodic_checkpointer_iteration_period_and_max_to_keep(tmp_path):
    trainer = _trainer()
    ckpt = Checkpointer(trainer.model, str(tmp_path), save_to_disk=True)
    trainer.register_hooks([hooks.PeriodicCheckpointer(ckpt, 0, iter_period=2, max_to_keep=2)])
    trainer.train(0, 3, 3)  # 9 iterations: iteration files at 1, 3, 5, 7; final at 8
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == [
        "model_final.pth", "model_iter_0000005.pth", "model_iter_0000007.pth"]
    assert torch.load(tmp_path / "model_final.pth", weights_only=True)["epoch"] == 2


def test_precise_bn_sets_population_statistics(caplog):
    model = _Net()
    data = _data(shift=3.0)
    trainer = _trainer(model)
    trainer.register_hooks([hooks.PreciseBN(1, model, _data(shift=3.0), num_iter=20)])
    trainer.optimizer.param_groups[0]["lr"] = 0.0  # weights fixed: the statistics are exact
    trainer.train(0, 1, 1)
    with torch.no_grad():
        feats = torch.cat([model.backbone[0](next(data)[0]) for _ in range(20)])
    assert torch.allclose(model.backbone[1].running_mean, feats.mean(0), atol=1e-4)

    with caplog.at_level(logging.INFO):
        hook = hooks.PreciseBN(1, nn.Linear(2, 2), [], 5)
    hook.update_stats()
    assert "no BatchNorm" in caplog.text


def test_flatten_results_dict_rejects_non_numbers():
    assert hooks.flatten_results_dict({"a": {"b": 1, "c": {"d": torch.tensor(2.0)}}}) == {"a/b": 1.0, "a/c/d": 2.0}
    with pytest.raises(ValueError, match="a/b"):
        hooks.flatten_results_dict({"a": {"b": "x"}})
