"""SOLVER.FREEZE_FC_ITERS freezes every classifier of the head: PCB's part classifiers, both of HACNN's."""
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from fastreid.engine import hooks
from fastreid.torchreid.models import build_model

MAX_ITER, FC_FREEZE_ITERS = 10, 3


def _sgd_step(model: nn.Module, images: torch.Tensor) -> None:
    """One SGD step on the sum of the model's logits (a list: one per part or branch)."""
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    optimizer.zero_grad()
    sum(logits.sum() for logits in model(images)).backward()
    optimizer.step()


def _run_hook(hook: hooks.LayerFreeze, it: int) -> None:
    hook.trainer = SimpleNamespace(iter=it, max_iter=MAX_ITER)
    hook.before_step()


@pytest.mark.parametrize("name,size,classifiers", [
    ("pcb_p4", (64, 32), ["heads.classifier.0", "heads.classifier.1", "heads.classifier.2", "heads.classifier.3"]),
    ("hacnn", (160, 64), ["heads.classifier_global", "heads.classifier_local"]),
])
def test_last_iterations_freeze_every_classifier_of_the_head(name, size, classifiers):
    torch.manual_seed(0)
    model = build_model(name, num_classes=3, pretrained=False).train()
    images = torch.rand(2, 3, *size)
    hook = hooks.LayerFreeze(model, [], freeze_iters=0, fc_freeze_iters=FC_FREEZE_ITERS)
    modules = dict(model.named_modules())

    def snapshot(names):
        return {n: [p.detach().clone() for p in modules[n].parameters()] for n in names}

    def changed(before):
        return {n for n, params in before.items()
                if any(not torch.equal(a, b) for a, b in zip(params, modules[n].parameters()))}

    _run_hook(hook, MAX_ITER - FC_FREEZE_ITERS - 1)  # still training the classifiers
    before = snapshot(classifiers)
    _sgd_step(model, images)
    assert changed(before) == set(classifiers)

    _run_hook(hook, MAX_ITER - FC_FREEZE_ITERS)
    others = [n for n, m in modules.items() if isinstance(m, (nn.Linear, nn.Conv2d)) and n not in classifiers]
    before = snapshot(classifiers + others)
    _sgd_step(model, images)
    assert not changed(before) & set(classifiers)  # every classifier kept its weights
    assert changed(before) & set(others)  # the rest still trains
    assert all(not p.requires_grad for n in classifiers for p in modules[n].parameters())


def test_a_head_without_classifiers_fails_clearly():
    model = nn.Module()
    model.backbone = nn.Conv2d(3, 4, 1)
    model.heads = nn.Sequential(nn.Flatten())
    with pytest.raises(KeyError, match="FREEZE_FC_ITERS.*classifier_names"):
        hooks.LayerFreeze(model, [], freeze_iters=0, fc_freeze_iters=2)
    hooks.LayerFreeze(model, [], freeze_iters=0, fc_freeze_iters=0)  # nothing to freeze: fine


def test_declared_classifiers_must_exist():
    model = nn.Module()
    model.heads = nn.Module()
    model.heads.classifier_names = ("classifier_a", "classifier_b")
    model.heads.classifier_a = nn.Linear(2, 2)
    with pytest.raises(KeyError, match="classifier_b"):
        hooks.head_classifiers(model)
