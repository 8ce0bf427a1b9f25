"""Fault injection around DefaultTrainer: failed evaluation, NaN after a resume, resume and eval-only edge cases."""
import logging
import sys
from pathlib import Path

import pytest
import torch

from fastreid.engine import DefaultTrainer
from fastreid.engine.hooks import CallbackHook

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from trainer_utils import tiny_cfg  # noqa: E402


class _EvalFails(DefaultTrainer):
    @classmethod
    def test(cls, cfg, model, evaluators=None):
        raise RuntimeError("the test set is broken")


def test_failed_evaluation_writes_the_epochs_checkpoint_first(tmp_path):
    out = tmp_path / "out"
    cfg = tiny_cfg(str(tmp_path / "data"), str(out), ["SOLVER.CHECKPOINT_PERIOD", "1", "TEST.EVAL_PERIOD", "1"])
    trainer = _EvalFails(cfg)
    with pytest.raises(RuntimeError, match="the test set is broken"):
        trainer.train()
    assert (out / "last_checkpoint").read_text() == "model_0000.pth"
    saved = torch.load(out / "model_0000.pth", weights_only=True)
    assert saved["epoch"] == 0 and saved["iteration"] == trainer.iters_per_epoch - 1

    resumed = DefaultTrainer(cfg)
    resumed.resume_or_load(resume=True)
    assert (resumed.start_epoch, resumed.start_iter) == (1, trainer.iters_per_epoch)


def test_nan_right_after_a_resume_stops_without_touching_the_resume_point(tmp_path):
    out = tmp_path / "out"
    opts = ["SOLVER.MAX_EPOCH", "2", "SOLVER.CHECKPOINT_PERIOD", "1", "TEST.EVAL_PERIOD", "0"]
    first = DefaultTrainer(tiny_cfg(str(tmp_path / "data"), str(out), opts))
    first.max_epoch = 1
    first.train()
    tagged = (out / "last_checkpoint").read_text()
    before = (out / tagged).read_bytes()

    trainer = DefaultTrainer(tiny_cfg(str(tmp_path / "data"), str(out), opts))
    trainer.resume_or_load(resume=True)
    assert trainer.start_epoch == 1

    def poison(t):
        with torch.no_grad():
            next(t.model.parameters()).fill_(float("nan"))
    trainer.register_hooks([CallbackHook(before_step=poison)])
    with pytest.raises(FloatingPointError, match="NaN"):
        trainer.train()
    assert (out / "last_checkpoint").read_text() == tagged and (out / tagged).read_bytes() == before


def test_resume_into_an_empty_folder_starts_from_scratch_and_says_so(tmp_path, caplog):
    trainer = DefaultTrainer(tiny_cfg(str(tmp_path / "data"), str(tmp_path / "empty")))
    with caplog.at_level(logging.INFO, logger="fastreid"):
        trainer.resume_or_load(resume=True)
    assert trainer.start_iter is None and trainer.start_epoch == 0
    assert "no checkpoint in" in caplog.text and "scratch" in caplog.text


def test_eval_only_without_weights_is_an_error_naming_the_key(tmp_path):
    with pytest.raises(ValueError, match="MODEL.WEIGHTS"):
        DefaultTrainer.run(tiny_cfg(str(tmp_path / "data"), str(tmp_path / "out")), eval_only=True)


def test_an_empty_query_folder_stops_the_trainer_before_any_training(tmp_path):
    from fastreid.data import DatasetCheckError

    data, out = tmp_path / "data", tmp_path / "out"
    DefaultTrainer(tiny_cfg(str(data), str(tmp_path / "first")))  # generates the synthetic set
    query = next(data.glob("**/query"))
    for image in query.iterdir():
        image.unlink()
    with pytest.raises(DatasetCheckError, match=str(query)):
        DefaultTrainer(tiny_cfg(str(data), str(out)))
    assert not list(out.glob("*.pth"))


def test_training_without_test_sets_builds_no_best_checkpointer(tmp_path):
    trainer = DefaultTrainer(tiny_cfg(str(tmp_path / "data"), str(tmp_path / "out"), ["DATASETS.TESTS", "()"]))
    assert not any(type(h).__name__ == "BestCheckpointer" for h in trainer.hooks)
