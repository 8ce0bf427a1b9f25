"""``DefaultTrainer.check_datasets``: the seam through which a project checks datasets of another kind."""
import sys
from pathlib import Path

import pytest

from fastreid.data import DatasetCheckError
from fastreid.engine import DefaultTrainer

sys.path.insert(0, str(Path(__file__).parent))
from trainer_utils import tiny_cfg  # noqa: E402


def test_default_check_rejects_an_unknown_test_set_before_anything_is_built(tmp_path):
    cfg = tiny_cfg(str(tmp_path / "data"), str(tmp_path / "out"), ["DATASETS.TESTS", "('NoSuchSet',)"])
    with pytest.raises(DatasetCheckError, match="DATASETS.TESTS.*NoSuchSet"):
        DefaultTrainer.check_datasets(cfg, train_set=None)


def test_a_subclass_check_replaces_the_default_and_sees_the_training_set(tmp_path):
    calls = []

    class Trainer(DefaultTrainer):
        @classmethod
        def check_datasets(cls, cfg, train_set):
            calls.append((cfg.DATASETS.TESTS, train_set))

    # A test set the default check would reject: the override alone decides.
    cfg = tiny_cfg(str(tmp_path / "data"), str(tmp_path / "out"), ["DATASETS.TESTS", "('NoSuchSet',)"])
    with pytest.raises(DatasetCheckError):
        DefaultTrainer(cfg)
    trainer = Trainer(cfg)
    assert calls == [(("NoSuchSet",), trainer.data_loader.dataset)]
