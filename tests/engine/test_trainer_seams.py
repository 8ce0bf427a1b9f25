"""DefaultTrainer's public seams: hooks and writer order, data loader reset, BN updates, set-up, config record."""
import json
import logging
import sys
from pathlib import Path

import torch
from torch import nn

from fastreid.config import get_cfg
from fastreid.engine import DefaultTrainer, SimpleTrainer, hooks
from fastreid.engine.hooks import CallbackHook, PeriodicWriter
from fastreid.utils.events import EventStorage

sys.path.insert(0, str(Path(__file__).parent))
from trainer_utils import tiny_cfg  # noqa: E402


class _Probe(CallbackHook):
    def __init__(self):
        super().__init__(after_step=lambda t: t.storage.put_scalar("probe", float(t.iter), smoothing_hint=False))


class _ProbedTrainer(DefaultTrainer):
    def build_hooks(self):
        return super().build_hooks() + [_Probe()]


def test_hooks_added_by_a_subclass_run_before_the_writer_the_trainer_appends(tmp_path):
    cfg = tiny_cfg(str(tmp_path / "data"), str(tmp_path / "out"), ["SOLVER.MAX_EPOCH", "1", "SOLVER.LOG_PERIOD", "1"])
    trainer = _ProbedTrainer(cfg)
    kinds = [type(h) for h in trainer.hooks]
    assert kinds[-2:] == [_Probe, PeriodicWriter] and kinds.count(PeriodicWriter) == 1
    assert not any(isinstance(h, PeriodicWriter) for h in trainer.build_hooks())
    trainer.train()
    lines = [json.loads(line) for line in (tmp_path / "out" / "metrics.json").read_text().splitlines()]
    probed = [line for line in lines if "probe" in line]
    assert probed and all(line["probe"] == line["iteration"] for line in probed)


def test_config_yaml_is_the_filled_config(tmp_path):
    cfg = tiny_cfg(str(tmp_path / "data"), str(tmp_path / "out"))
    assert cfg.MODEL.HEADS.NUM_CLASSES == 0
    trainer = DefaultTrainer(cfg)
    saved = get_cfg()
    saved.merge_from_file(str(tmp_path / "out" / "config.yaml"))
    assert saved.MODEL.HEADS.NUM_CLASSES == trainer.data_loader.dataset.num_classes > 0
    assert saved == trainer.cfg


def test_building_a_trainer_sets_up_no_logging_and_logs_the_model_at_debug(tmp_path, caplog):
    cfg = tiny_cfg(str(tmp_path / "data"), str(tmp_path / "out"))
    handlers = list(logging.getLogger("fastreid").handlers)
    with caplog.at_level(logging.INFO, logger="fastreid"):
        DefaultTrainer(cfg)
    assert logging.getLogger("fastreid").handlers == handlers
    assert "Model:" not in caplog.text
    with caplog.at_level(logging.DEBUG, logger="fastreid.engine.trainer"):
        DefaultTrainer.build_model(cfg)
    assert "Model:" in caplog.text


def test_swa_shares_the_precise_bn_updater_or_builds_its_own(tmp_path):
    swa = ["SOLVER.SWA.ENABLED", "True", "SOLVER.SWA.ITER", "2", "SOLVER.SWA.PERIOD", "1",
           "TEST.PRECISE_BN.DATASET", "SyntheticPerson", "TEST.PRECISE_BN.NUM_ITER", "2"]
    alone = DefaultTrainer(tiny_cfg(str(tmp_path / "data"), str(tmp_path / "a"), swa))
    assert not any(isinstance(h, hooks.PreciseBN) for h in alone.hooks)
    swa_hook = next(h for h in alone.hooks if type(h).__name__ == "SWA")
    assert isinstance(swa_hook.update_bn, hooks.BNStatsUpdater)

    both = DefaultTrainer(tiny_cfg(str(tmp_path / "data"), str(tmp_path / "b"), swa + ["TEST.PRECISE_BN.ENABLED", "True"]))
    precise = next(h for h in both.hooks if isinstance(h, hooks.PreciseBN))
    assert next(h for h in both.hooks if type(h).__name__ == "SWA").update_bn is precise.updater


class _Const(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, batch):
        self.seen = batch
        return {"loss": (self.w - batch) ** 2}


def test_reset_data_loader_switches_streams_and_close_starts_a_new_iterator():
    model = _Const()
    trainer = SimpleTrainer(model, [torch.tensor(1.0), torch.tensor(2.0)], torch.optim.SGD(model.parameters(), 0.1))
    with EventStorage():
        trainer.run_step()
        assert model.seen == 1.0
        trainer.reset_data_loader([torch.tensor(5.0)])
        trainer.run_step()
        assert model.seen == 5.0
        trainer.close()
        trainer.run_step()  # a new iterator over the current loader
        assert model.seen == 5.0
