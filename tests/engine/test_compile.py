"""MODEL.COMPILE: a compiled model trains, evaluates, and saves checkpoints that an uncompiled model loads."""
import sys
from pathlib import Path

import pytest
import torch

from fastreid.engine import DefaultTrainer
from fastreid.engine.compilation import compile_model
from fastreid.utils.checkpoint import Checkpointer

sys.path.insert(0, str(Path(__file__).parent))
from trainer_utils import tiny_cfg  # noqa: E402


def test_compile_model_keeps_the_module_and_its_keys():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    keys = list(model.state_dict())
    assert compile_model(model) is model
    assert list(model.state_dict()) == keys


@pytest.mark.slow
def test_compiled_training_writes_plain_checkpoints(tmp_path, monkeypatch):
    # The wiring under test is fastreid's; inductor's C++ code generation would add a minute of compiler time on a
    # cold cache, so the graphs run on the "aot_eager" backend (dynamo + AOT autograd, the same graph capture).
    compile_module = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: compile_module(self, backend="aot_eager", **kw))
    torch._dynamo.reset()
    extra = ["MODEL.COMPILE", "True", "SOLVER.MAX_EPOCH", "1"]
    cfg = tiny_cfg(str(tmp_path / "data"), str(tmp_path / "out"), extra)
    trainer = DefaultTrainer(cfg)
    assert trainer.model._compiled_call_impl is not None
    initial = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    frames_before = torch._dynamo.utils.counters["frames"]["ok"]
    results = trainer.train()
    assert torch._dynamo.utils.counters["frames"]["ok"] > frames_before  # the forward ran as captured graphs
    assert "mAP" in results["SyntheticPerson"]
    saved = torch.load(tmp_path / "out" / "model_final.pth", weights_only=True)["model"]
    assert not [k for k in saved if "_orig_mod" in k]
    assert any(not torch.equal(saved[k], initial[k]) for k in initial)  # training moved the weights

    plain = DefaultTrainer.build_model(trainer.cfg)
    Checkpointer(plain).load(str(tmp_path / "out" / "model_final.pth"))
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(value, saved[key])
