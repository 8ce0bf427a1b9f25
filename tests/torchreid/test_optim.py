"""fastreid.torchreid.optim: torchreid's build_optimizer / build_lr_scheduler options and their effect."""
import math

import pytest
import torch
from torch import nn

from fastreid.torchreid import models, optim


class _Net(nn.Module):
    """A torchreid-style model: layers as top-level children, plus one parameter outside any layer."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 4)
        self.classifier = nn.Linear(4, 2)
        self.scale = nn.Parameter(torch.ones(1))


def _ids(params):
    return {id(p) for p in params}


def _curve(scheduler, epochs):
    lrs = []
    for _ in range(epochs):
        lrs.append([g["lr"] for g in scheduler.optimizer.param_groups])
        scheduler.optimizer.step()
        scheduler.step()
    return lrs


def test_default_is_torchreids_adam():
    opt = optim.build_optimizer(_Net())
    assert type(opt) is torch.optim.Adam and len(opt.param_groups) == 1
    group = opt.param_groups[0]
    assert group["lr"] == 0.0003 and group["weight_decay"] == 5e-4
    assert group["betas"] == (0.9, 0.99) and group["amsgrad"] is False


def test_each_optim_and_its_arguments():
    net = _Net()
    amsgrad = optim.build_optimizer(net, optim="amsgrad", adam_beta1=0.8, adam_beta2=0.9)
    assert type(amsgrad) is torch.optim.Adam and amsgrad.param_groups[0]["amsgrad"] is True
    assert amsgrad.param_groups[0]["betas"] == (0.8, 0.9)
    sgd = optim.build_optimizer(net, optim="sgd", lr=0.01, momentum=0.5, sgd_dampening=0.1, weight_decay=1e-4)
    assert type(sgd) is torch.optim.SGD
    assert {k: sgd.param_groups[0][k] for k in ("lr", "momentum", "dampening", "nesterov", "weight_decay")} == {
        "lr": 0.01, "momentum": 0.5, "dampening": 0.1, "nesterov": False, "weight_decay": 1e-4}
    nesterov = optim.build_optimizer(net, optim="sgd", sgd_nesterov=True)
    assert nesterov.param_groups[0]["nesterov"] is True and nesterov.param_groups[0]["momentum"] == 0.9
    rmsprop = optim.build_optimizer(net, optim="rmsprop", rmsprop_alpha=0.9, momentum=0.1)
    assert type(rmsprop) is torch.optim.RMSprop
    assert rmsprop.param_groups[0]["alpha"] == 0.9 and rmsprop.param_groups[0]["momentum"] == 0.1
    radam = optim.build_optimizer(net, optim="radam", weight_decay=0.01)
    assert type(radam) is torch.optim.RAdam and radam.param_groups[0]["decoupled_weight_decay"] is True
    assert radam.param_groups[0]["betas"] == (0.9, 0.99)


def test_bad_arguments_fail():
    with pytest.raises(ValueError, match="Unsupported optim: 'adamw'.*radam"):
        optim.build_optimizer(_Net(), optim="adamw")
    with pytest.raises(TypeError, match="nn.Module"):
        optim.build_optimizer([nn.Parameter(torch.ones(1))])
    with pytest.raises(ValueError, match=r"\['clasifier'\] are not layers.*classifier"):
        optim.build_optimizer(_Net(), staged_lr=True, new_layers="clasifier")


def test_staged_lr_on_a_torchreid_named_model():
    """The how-to's example: "classifier" at lr 0.01, every other layer at 0.001."""
    model = models.build_model("resnet18", 3, pretrained=False)
    opt = optim.build_optimizer(model, optim="sgd", lr=0.01, staged_lr=True, new_layers="classifier",
                                base_lr_mult=0.1)
    base, new = opt.param_groups
    assert math.isclose(base["lr"], 0.001) and new["lr"] == 0.01
    assert _ids(new["params"]) == _ids(model.heads.classifier.parameters())
    assert _ids(base["params"]) | _ids(new["params"]) == _ids(model.parameters())
    assert not _ids(base["params"]) & _ids(new["params"])


def test_staged_lr_with_several_new_layers_and_a_loose_parameter():
    net = _Net()
    opt = optim.build_optimizer(net, lr=0.1, staged_lr=True, new_layers=["fc", "classifier"], base_lr_mult=0.5)
    base, new = opt.param_groups
    assert base["lr"] == 0.05 and new["lr"] == 0.1
    assert _ids(new["params"]) == _ids([*net.fc.parameters(), *net.classifier.parameters()])
    assert _ids(base["params"]) == _ids([*net.conv1.parameters(), net.scale])


def test_staged_lr_without_new_layers_warns(caplog):
    opt = optim.build_optimizer(_Net(), lr=0.1, staged_lr=True)
    assert "new_layers is empty" in caplog.text
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(0.01), 0.1] and not opt.param_groups[1]["params"]


def test_single_step_schedule():
    opt = optim.build_optimizer(_Net(), optim="sgd", lr=1.0)
    lrs = _curve(optim.build_lr_scheduler(opt, "single_step", stepsize=2, gamma=0.5), 6)
    assert [g[0] for g in lrs] == pytest.approx([1, 1, 0.5, 0.5, 0.25, 0.25])
    # torchreid takes a list's last entry for single_step
    opt = optim.build_optimizer(_Net(), optim="sgd", lr=1.0)
    lrs = _curve(optim.build_lr_scheduler(opt, "single_step", stepsize=[1, 3]), 4)
    assert [g[0] for g in lrs] == pytest.approx([1, 1, 1, 0.1])


def test_default_schedule_steps_every_epoch():
    opt = optim.build_optimizer(_Net(), optim="sgd", lr=1.0)
    assert [g[0] for g in _curve(optim.build_lr_scheduler(opt), 3)] == pytest.approx([1, 0.1, 0.01])


def test_multi_step_schedule_keeps_staged_ratio():
    opt = optim.build_optimizer(_Net(), optim="sgd", lr=1.0, staged_lr=True, new_layers="classifier")
    lrs = _curve(optim.build_lr_scheduler(opt, "multi_step", stepsize=[1, 3], gamma=0.1), 4)
    assert [g[1] for g in lrs] == pytest.approx([1, 0.1, 0.1, 0.01])
    assert [g[0] for g in lrs] == pytest.approx([0.1, 0.01, 0.01, 0.001])


def test_cosine_schedule_reaches_zero_at_max_epoch():
    opt = optim.build_optimizer(_Net(), optim="sgd", lr=1.0)
    lrs = _curve(optim.build_lr_scheduler(opt, "cosine", max_epoch=4), 5)
    assert [g[0] for g in lrs] == pytest.approx([(1 + math.cos(math.pi * e / 4)) / 2 for e in range(5)], abs=1e-7)


def test_bad_schedules_fail():
    opt = optim.build_optimizer(_Net())
    with pytest.raises(ValueError, match="Unsupported scheduler: 'poly'.*cosine"):
        optim.build_lr_scheduler(opt, "poly")
    with pytest.raises(TypeError, match="must be a list"):
        optim.build_lr_scheduler(opt, "multi_step", stepsize=20)
    with pytest.raises(TypeError, match="must be an integer"):
        optim.build_lr_scheduler(opt, "single_step", stepsize=2.5)
