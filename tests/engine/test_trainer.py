import json
import logging
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fastreid.engine import DefaultTrainer, default_argument_parser, default_setup
from fastreid.utils.checkpoint import Checkpointer

sys.path.insert(0, str(Path(__file__).parent))
from trainer_utils import RESUME_OVERRIDES, tiny_cfg, tiny_overrides, train_interrupted  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _setup(cfg):
    default_setup(cfg, default_argument_parser().parse_args([]))


def test_default_trainer_trains_evaluates_and_writes_outputs(tmp_path):
    cfg = tiny_cfg(str(tmp_path / "data"), str(tmp_path / "out"))
    _setup(cfg)
    trainer = DefaultTrainer(cfg)
    assert trainer.cfg.MODEL.HEADS.NUM_CLASSES == trainer.data_loader.dataset.num_classes > 0
    trainer.resume_or_load(resume=False)
    results = trainer.train()
    assert set(results["SyntheticPerson"]) >= {"Rank-1", "Rank-5", "Rank-10", "mAP", "mINP", "metric"}
    out = tmp_path / "out"
    assert (out / "last_checkpoint").read_text() == "model_final.pth"
    assert {"model_0000.pth", "model_final.pth", "model_best.pth", "config.yaml"} <= {p.name for p in out.iterdir()}
    lines = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    assert any("loss_cls" in line and "lr" in line for line in lines)
    assert any("SyntheticPerson/mAP" in line for line in lines)
    events = EventAccumulator(str(out))
    events.Reload()
    assert "total_loss" in events.Tags()["scalars"]


def test_eval_only_reproduces_the_final_evaluation_silently(tmp_path, caplog):
    cfg = tiny_cfg(str(tmp_path / "data"), str(tmp_path / "out"), ["SOLVER.MAX_EPOCH", "1"])
    trainer = DefaultTrainer(cfg)
    trained = trainer.train()["SyntheticPerson"]
    final = str(tmp_path / "out" / "model_final.pth")
    model = DefaultTrainer.build_model(trainer.cfg)
    Checkpointer(model).load(final)
    assert DefaultTrainer.test(trainer.cfg, model)["SyntheticPerson"] == pytest.approx(trained)

    # --eval-only with the user's config (NUM_CLASSES left at 0): the classifier is dropped without a word.
    with caplog.at_level(logging.WARNING):
        again = DefaultTrainer.run(tiny_cfg(str(tmp_path / "data"), str(tmp_path / "out"), ["MODEL.WEIGHTS", final]),
                                   eval_only=True)
    assert again["SyntheticPerson"] == pytest.approx(trained)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    saved = torch.load(final, weights_only=True)
    assert saved["num_classes"] == trainer.cfg.MODEL.HEADS.NUM_CLASSES > 0
    assert "NUM_CLASSES: %d" % saved["num_classes"] in saved["config"]


def test_fine_tuning_on_other_identities_skips_the_classifier(tmp_path, caplog):
    # No default_setup here: its log handlers stop propagation to caplog.
    cfg = tiny_cfg(str(tmp_path / "data"), str(tmp_path / "out"), ["SOLVER.MAX_EPOCH", "1"])
    DefaultTrainer(cfg).train()
    other = tiny_cfg(str(tmp_path / "data2"), str(tmp_path / "out2"), [
        "DATASETS.SYNTHETIC.NUM_IDS", "16", "MODEL.WEIGHTS", str(tmp_path / "out" / "model_final.pth")])
    trainer = DefaultTrainer(other)
    with caplog.at_level("INFO", logger="fastreid.utils.checkpoint"):
        trainer.resume_or_load(resume=False)
    # One INFO line for the classifier of another width, no warning table (issue 11).
    records = [r for r in caplog.records if r.name == "fastreid.utils.checkpoint"]
    assert [r for r in records if r.levelno >= logging.WARNING] == []
    lines = [r.getMessage() for r in records if "Classifier not loaded" in r.getMessage()]
    assert len(lines) == 1 and "heads.classifier.weight" in lines[0]
    assert trainer.start_iter is None and trainer.start_epoch == 0
    loaded = torch.load(tmp_path / "out" / "model_final.pth", weights_only=True)["model"]
    assert torch.equal(trainer.model.state_dict()["backbone.conv1.weight"], loaded["backbone.conv1.weight"])


def _run_script(*args, env=None):
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path):
    """Train 6 iterations straight; again, SIGKILL mid-epoch after iteration 3's checkpoint, resume: same weights."""
    script = str(Path(__file__).parent / "run_tiny_training.py")
    data = str(tmp_path / "data")
    straight = _run_script(script, data, str(tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr[-3000:]

    killed = _run_script(script, data, str(tmp_path / "resumed"), "--kill-after-iter", "3")
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert (tmp_path / "resumed" / "last_checkpoint").read_text() == "model_iter_0000003.pth"
    assert not (tmp_path / "resumed" / "model_final.pth").exists()

    resumed = _run_script(script, data, str(tmp_path / "resumed"), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming at epoch 1, iteration 4" in resumed.stdout + resumed.stderr

    a = torch.load(tmp_path / "straight" / "model_final.pth", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "model_final.pth", weights_only=True)
    assert a["iteration"] == b["iteration"] == 5
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for key in a["optimizer"]["state"]:
        assert torch.equal(a["optimizer"]["state"][key]["exp_avg"], b["optimizer"]["state"][key]["exp_avg"])


def _train_with_workers(data, out, *, resume=False, stop_after_iter=None):
    cfg = tiny_cfg(data, out, RESUME_OVERRIDES + ["DATALOADER.NUM_WORKERS", "2"])
    trainer = train_interrupted(cfg, resume=resume, stop_after_iter=stop_after_iter)
    assert multiprocessing.active_children() == []  # the loader workers are stopped when training ends
    return trainer.start_iter


@pytest.mark.slow
def test_resume_with_loader_workers_equals_an_uninterrupted_run(tmp_path):
    """With 2 loader workers: 6 iterations straight; again, stopped after iteration 3's checkpoint and resumed
    by a new trainer: same weights (augmentation does not depend on which worker loads a sample)."""
    data = str(tmp_path / "data")
    try:
        _train_with_workers(data, str(tmp_path / "straight"))
        _train_with_workers(data, str(tmp_path / "resumed"), stop_after_iter=3)
        assert (tmp_path / "resumed" / "last_checkpoint").read_text() == "model_iter_0000003.pth"
        assert _train_with_workers(data, str(tmp_path / "resumed"), resume=True) == 4
    finally:
        torch.use_deterministic_algorithms(False)
    a = torch.load(tmp_path / "straight" / "model_final.pth", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "model_final.pth", weights_only=True)
    assert a["iteration"] == b["iteration"] == 5
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key


def test_swa_run_ends_with_averaged_weights_and_recomputed_bn(tmp_path):
    cfg = tiny_cfg(str(tmp_path / "data"), str(tmp_path / "out"), [
        "SOLVER.MAX_EPOCH", "1", "SOLVER.SWA.ENABLED", "True", "SOLVER.SWA.ITER", "2", "SOLVER.SWA.PERIOD", "1",
        "TEST.PRECISE_BN.DATASET", "SyntheticPerson", "TEST.PRECISE_BN.NUM_ITER", "2"])
    _setup(cfg)
    trainer = DefaultTrainer(cfg)
    swa = [h for h in trainer.hooks if type(h).__name__ == "SWA"]
    assert len(swa) == 1
    trainer.train()
    assert int(swa[0].averaged.n_averaged) == 2
    final = torch.load(tmp_path / "out" / "model_final.pth", weights_only=True)["model"]
    averaged = dict(swa[0].averaged.module.named_parameters())
    assert torch.equal(final["heads.classifier.weight"], averaged["heads.classifier.weight"])
