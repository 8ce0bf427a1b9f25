"""FastRetri's config key and configs."""
import pytest

from fastreid.config import get_cfg

from .conftest import PROJECT


def test_add_retri_config_adds_the_recall_key_which_the_project_yaml_needs():
    from fast_retri import add_retri_config

    with pytest.raises(Exception, match="RECALLS"):
        get_cfg().merge_from_file(str(PROJECT / "configs" / "synthetic_R18.yml"))
    cfg = get_cfg()
    before = set(cfg.full_keys())
    add_retri_config(cfg)
    assert set(cfg.full_keys()) - before == {"TEST.RECALLS"}


@pytest.mark.parametrize("name", sorted(p.name for p in (PROJECT / "configs").glob("*.yml")))
def test_every_project_config_loads(name):
    from fast_retri import add_retri_config

    cfg = get_cfg()
    add_retri_config(cfg)
    cfg.merge_from_file(str(PROJECT / "configs" / name))
    assert cfg.TEST.RECALLS and all(k >= 1 for k in cfg.TEST.RECALLS)
