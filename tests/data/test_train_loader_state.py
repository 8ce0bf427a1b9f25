"""TrainDataLoader: each iterator continues where the last one stopped, and state_dict() resumes the stream."""
import itertools

import pytest
import torch

from fastreid.data import build_reid_train_loader
from fastreid.data.build import TrainDataLoader


def _paths(loader, n):
    return [tuple(batch["img_paths"]) for batch in itertools.islice(iter(loader), n)]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_new_iterators_continue_and_state_dict_resumes(tiny_synthetic_cfg, num_workers):
    cfg = tiny_synthetic_cfg
    cfg.DATALOADER.NUM_WORKERS = num_workers
    straight = build_reid_train_loader(cfg, seed=5)
    assert isinstance(straight, TrainDataLoader) and straight.seed == 5
    expected = _paths(straight, 7)

    loader = build_reid_train_loader(cfg, seed=5)
    first = _paths(loader, 3)
    assert loader.state_dict() == {"seed": 5, "start": 3 * cfg.SOLVER.IMS_PER_BATCH}
    second = _paths(loader, 2)  # a new iterator after the first was dropped: no batch repeated or lost
    state = loader.state_dict()

    resumed = build_reid_train_loader(cfg)  # another seed until the state is loaded
    assert resumed.seed != 5 or resumed.state_dict()["start"] == 0
    resumed.load_state_dict(state)
    assert first + second + _paths(resumed, 2) == expected


def test_batches_after_a_resume_are_bitwise_equal(tiny_synthetic_cfg):
    cfg = tiny_synthetic_cfg
    cfg.INPUT.REA.ENABLED = True
    straight = list(itertools.islice(iter(build_reid_train_loader(cfg, seed=3)), 4))
    loader = build_reid_train_loader(cfg, seed=3)
    list(itertools.islice(iter(loader), 2))
    resumed = build_reid_train_loader(cfg, seed=9)
    resumed.load_state_dict(loader.state_dict())
    for a, b in zip(straight[2:], itertools.islice(iter(resumed), 2)):
        assert torch.equal(a["images"], b["images"]) and torch.equal(a["targets"], b["targets"])
