"""Fault injection at the config: a YAML file that tries to run code, a key that does not exist."""
import pytest

from fastreid.config import load_config


def test_a_python_tag_in_a_config_file_is_refused_without_running(tmp_path):
    marker = tmp_path / "ran"
    config = tmp_path / "evil.yml"
    config.write_text(f"SOLVER:\n  BASE_LR: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(Exception, match="python/object/apply"):
        load_config(str(config))
    assert not marker.exists()


def test_an_unknown_key_names_the_file_and_the_closest_key(tmp_path):
    config = tmp_path / "typo.yml"
    config.write_text("SOLVER:\n  BASE_LRR: 0.1\n")
    with pytest.raises(Exception, match="SOLVER.BASE_LRR") as info:
        load_config(str(config))
    assert str(config) in str(info.value) and "SOLVER.BASE_LR" in str(info.value).replace("SOLVER.BASE_LRR", "")
