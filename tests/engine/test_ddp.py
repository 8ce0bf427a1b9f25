"""create_ddp_model / unwrap_model, and when DefaultTrainer asks DDP to look for unused parameters."""
import pytest
from torch import nn
from torch.nn.parallel import DataParallel

from fastreid.config import get_cfg
from fastreid.engine import DefaultTrainer, create_ddp_model, unwrap_model
from fastreid.modeling import build_model


def test_single_process_keeps_the_model_and_unwrap_finds_it_inside_wrappers():
    model = nn.Linear(2, 2)
    assert create_ddp_model(model, find_unused_parameters=True) is model
    assert unwrap_model(model) is model
    assert unwrap_model(DataParallel(DataParallel(model))) is model


def _cfg(*opts):
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.PRETRAIN", "False",
                         "MODEL.HEADS.NUM_CLASSES", "4", *opts])
    return cfg


@pytest.mark.parametrize("opts,expected", [
    ((), False),
    (("SOLVER.FREEZE_ITERS", "10", "MODEL.FREEZE_LAYERS", "['backbone']"), True),
    (("SOLVER.FREEZE_ITERS", "10", "MODEL.FREEZE_LAYERS", "['']"), False),  # nothing named: nothing frozen
    (("SOLVER.FREEZE_FC_ITERS", "10"), True),
    (("MODEL.LOSSES.NAME", "('TripletLoss',)"), True),  # the classifier feeds no loss
])
def test_unused_parameters_searched_only_when_some_get_no_gradient(opts, expected):
    cfg = _cfg(*opts)
    assert DefaultTrainer.find_unused_parameters(cfg, build_model(cfg)) is expected
