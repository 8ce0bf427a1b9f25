"""``load_config``: the one loader behind training, inference and the tools."""
from pathlib import Path

import pytest

from fastreid.config import CfgNode, ConfigError, get_cfg, load_config

REPO = Path(__file__).resolve().parents[2]
RECIPE = str(REPO / "configs" / "Synthetic" / "bagtricks_R18.yml")
OPTS = ["SOLVER.BASE_LR", "0.01", "MODEL.HEADS.NUM_CLASSES", 7, "INPUT.SIZE_TEST", "[64, 32]"]


def _by_hand(config_file, opts, cfg=None):
    """What every entry point wrote out before ``load_config`` existed."""
    cfg = get_cfg() if cfg is None else cfg
    if config_file:
        cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    cfg.freeze()
    return cfg


@pytest.mark.parametrize("config_file, opts", [(RECIPE, OPTS), (RECIPE, ()), ("", OPTS), ("", ())])
def test_same_tree_as_merging_by_hand(config_file, opts):
    cfg = load_config(config_file, opts)
    assert cfg.is_frozen()
    assert cfg == _by_hand(config_file, opts) and cfg.dump() == _by_hand(config_file, opts).dump()


def test_file_then_overrides_in_that_order(tmp_path):
    path = tmp_path / "child.yml"
    (tmp_path / "base.yml").write_text("SOLVER:\n  BASE_LR: 0.5\n  MAX_EPOCH: 3\n")
    path.write_text("_BASE_: base.yml\nSOLVER:\n  MAX_EPOCH: 4\n")
    cfg = load_config(str(path), ["SOLVER.MAX_EPOCH", "5"])
    assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_EPOCH) == (0.5, 5)
    assert load_config(str(path)).SOLVER.MAX_EPOCH == 4


def test_merges_into_the_given_base_in_place(tmp_path):
    base = get_cfg()
    base.PROJECT = CfgNode({"WIDTH": 8})  # a project's own key, added before its YAML is merged
    path = tmp_path / "project.yml"
    path.write_text("PROJECT:\n  WIDTH: 16\n")
    cfg = load_config(str(path), ["SOLVER.BASE_LR", "0.2"], base=base)
    assert cfg is base and cfg.is_frozen()
    assert (cfg.PROJECT.WIDTH, cfg.SOLVER.BASE_LR) == (16, 0.2)
    with pytest.raises(ConfigError, match="PROJECT"):
        load_config(str(path))  # without the project's keys the file does not load


def test_unfrozen_on_request_and_fresh_each_call():
    cfg = load_config(opts=["SOLVER.BASE_LR", "0.2"], freeze=False)
    assert not cfg.is_frozen()
    cfg.SOLVER.BASE_LR = 0.3
    assert load_config().SOLVER.BASE_LR == get_cfg().SOLVER.BASE_LR


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="KEY VALUE pairs"):
        load_config(opts=["SOLVER.BASE_LR"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "missing.yml"))
    with pytest.raises(ConfigError, match="SOLVER.BASE_RL"):
        load_config(opts=["SOLVER.BASE_RL", "0.1"])
