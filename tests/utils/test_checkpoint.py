import logging
import os
import random

import numpy as np
import pytest
import torch
from torch import nn

from fastreid.utils.checkpoint import Checkpointer


class _Net(nn.Module):
    def __init__(self, num_classes=3):
        super().__init__()
        self.backbone = nn.Linear(4, 5)
        self.classifier = nn.Linear(5, num_classes)


def _trained(tmp_path):
    torch.manual_seed(0)
    model = _Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    for _ in range(2):
        model.classifier(model.backbone(torch.randn(2, 4))).sum().backward()
        opt.step()
        sched.step()
    return model, opt, sched, Checkpointer(model, str(tmp_path), save_to_disk=True, optimizer=opt, scheduler=sched)


def test_round_trip_restores_model_optimizer_scheduler_rng_and_extra(tmp_path):
    model, opt, sched, ckpt = _trained(tmp_path)
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    ckpt.save("model_0001", iteration=7, epoch=1)
    expected_draws = (random.random(), float(np.random.rand()), torch.rand(1).item())

    torch.manual_seed(123)
    model2 = _Net()
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.1, momentum=0.9)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, 1, gamma=0.5)
    ckpt2 = Checkpointer(model2, str(tmp_path), save_to_disk=True, optimizer=opt2, scheduler=sched2)
    assert ckpt2.has_checkpoint()
    extra = ckpt2.resume_or_load("", resume=True)
    assert extra["iteration"] == 7 and extra["epoch"] == 1
    draws = (random.random(), float(np.random.rand()), torch.rand(1).item())
    assert draws == expected_draws
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    m1 = [s["momentum_buffer"] for s in opt.state.values()]
    m2 = [s["momentum_buffer"] for s in opt2.state.values()]
    assert all(torch.equal(a, b) for a, b in zip(m1, m2)) and len(m1) == 4
    assert sched2.last_epoch == 2 and opt2.param_groups[0]["lr"] == pytest.approx(0.025)


def test_resume_false_loads_weights_only_not_optimizer(tmp_path):
    model, opt, sched, ckpt = _trained(tmp_path)
    ckpt.save("model_final")
    model2 = _Net()
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.1, momentum=0.9)
    extra = Checkpointer(model2, str(tmp_path / "other"), optimizer=opt2).resume_or_load(
        str(tmp_path / "model_final.pth"), resume=True)  # no checkpoint in other/ -> loads the given weights
    assert torch.equal(model2.backbone.weight, model.backbone.weight)
    assert not opt2.state and "optimizer" in extra  # left unprocessed


def test_atomic_save_keeps_previous_checkpoint_on_crash(tmp_path, monkeypatch):
    model, opt, sched, ckpt = _trained(tmp_path)
    ckpt.save("model_0000", iteration=3)
    good = torch.load(tmp_path / "model_0000.pth", weights_only=True)
    real_save = torch.save

    def crashing_save(obj, f, *a, **k):
        f.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crashing_save)
    with torch.no_grad():
        model.backbone.weight.add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save("model_0001", iteration=5)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save("model_0000", iteration=5)  # overwriting the same name is atomic too
    monkeypatch.setattr(torch, "save", real_save)

    assert (tmp_path / "last_checkpoint").read_text() == "model_0000.pth"
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000.pth"]  # no temp leftovers
    fresh = _Net()
    extra = Checkpointer(fresh, str(tmp_path)).resume_or_load("", resume=True)
    assert extra["iteration"] == 3
    assert torch.equal(fresh.backbone.weight, good["model"]["backbone.weight"])


def test_shape_mismatch_is_skipped_with_a_table(tmp_path, caplog):
    src = _Net(num_classes=3)
    Checkpointer(src, str(tmp_path), save_to_disk=True).save("w")
    dst = _Net(num_classes=7)
    before = dst.classifier.weight.clone()
    with caplog.at_level(logging.WARNING):
        Checkpointer(dst, "").load(str(tmp_path / "w.pth"))
    assert torch.equal(dst.backbone.weight, src.backbone.weight)
    assert torch.equal(dst.classifier.weight, before)
    text = caplog.text
    assert "shape in checkpoint" in text and "classifier.weight" in text and "(3, 5)" in text and "(7, 5)" in text
    assert "missing key" in text and "classifier.bias" in text


def test_bare_state_dict_and_unexpected_keys(tmp_path, caplog):
    src = _Net()
    sd = dict(src.state_dict(), extra_head=torch.zeros(1))
    torch.save(sd, tmp_path / "bare.pth")
    dst = _Net()
    with caplog.at_level(logging.WARNING):
        Checkpointer(dst).load(str(tmp_path / "bare.pth"))
    assert torch.equal(dst.classifier.bias, src.classifier.bias)
    assert "unexpected key" in caplog.text and "extra_head" in caplog.text


class _Evil:
    def __reduce__(self):
        return (os.makedirs, ("/tmp/fastreid_pwned_marker_dir",))


def test_weights_only_refuses_python_objects(tmp_path):
    marker = "/tmp/fastreid_pwned_marker_dir"
    if os.path.isdir(marker):
        os.rmdir(marker)
    torch.save({"model": _Net().state_dict(), "evil": _Evil()}, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match="weights_only"):
        Checkpointer(_Net()).load(str(tmp_path / "evil.pth"))
    assert not os.path.exists(marker)


def test_missing_and_corrupt_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        Checkpointer(_Net()).load(str(tmp_path / "nope.pth"))
    (tmp_path / "junk.pth").write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth"):
        Checkpointer(_Net()).load(str(tmp_path / "junk.pth"))
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(ValueError, match="not a dict"):
        Checkpointer(_Net()).load(str(tmp_path / "tensor.pth"))


def test_save_tag_last_false_and_non_main_process_does_not_write(tmp_path):
    ckpt = Checkpointer(_Net(), str(tmp_path), save_to_disk=True)
    ckpt.save("model_0000")
    ckpt.save("model_best", tag_last=False)
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000.pth"
    assert (tmp_path / "model_best.pth").exists()
    Checkpointer(_Net(), str(tmp_path / "x"), save_to_disk=False).save("m")
    assert not (tmp_path / "x").exists()
