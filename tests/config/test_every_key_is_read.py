"""No config key is silently ignored: each has a reader in the source, or is listed as unsupported and warns."""
import logging
import textwrap
from pathlib import Path

import pytest

from fastreid.config import ConfigError, get_cfg, load_config
from fastreid.config.defaults import UNSUPPORTED_KEYS
from fastreid.config.key_usage import find_key_reads, source_files, unread_keys

REPO = Path(__file__).resolve().parents[2]
# The tree's definition and the checker itself name keys without reading them.
NOT_READERS = [REPO / "fastreid" / "config" / "defaults.py", REPO / "fastreid" / "config" / "key_usage.py"]


def test_every_default_key_has_a_reader_or_is_listed_as_unsupported():
    keys = list(get_cfg().full_keys())
    reads = find_key_reads(source_files([REPO / "fastreid", REPO / "tools"], exclude=NOT_READERS))
    assert [key for key in unread_keys(keys, reads) if key not in UNSUPPORTED_KEYS] == []
    never_read = ["MODEL.BACKBONE.NEVER_READ", "NEVER_READ"]
    assert unread_keys(never_read, reads) == never_read  # the check can fail
    # The table holds only keys of the tree that nothing reads (an entry is removed once the key is implemented).
    assert [key for key in UNSUPPORTED_KEYS if key not in keys or reads.reads(key)] == []


KEYS = [
    "SEED", "OUTPUT_DIR", "VERSION",
    "MODEL.BACKBONE.DEPTH", "MODEL.BACKBONE.NAME", "MODEL.BACKBONE.NORM", "MODEL.HEADS.NORM",
    "MODEL.LOSSES.CE.SCALE", "MODEL.LOSSES.TRI.SCALE", "MODEL.LOSSES.TRI.MARGIN",
    "TEST.AQE.QE_K", "TEST.AQE.ALPHA", "TEST.RERANK.K1", "SOLVER.BASE_LR", "SOLVER.STEPS", "SOLVER.GAMMA",
    "INPUT.CJ.HUE", "INPUT.CJ.PROB", "INPUT.REA.PROB", "DATASETS.NAMES", "DATASETS.TESTS", "KD.SCALE",
]

SOURCE = '''
def build(cfg):
    depth = cfg.MODEL.BACKBONE.DEPTH              # a full chain
    backbone = cfg.MODEL.BACKBONE
    norm = backbone["NORM"]                       # through an alias, by subscript
    seed = cfg.SEED                               # a top-level key after a cfg name
    cfg.MODEL.HEADS.NORM = norm                   # a write, not a read
    losses = cfg.MODEL.LOSSES
    scale = getattr(losses[name], "SCALE")        # a computed group: any UPPER_CASE literal of the module ("CE")
    return [f"{x}" for x in ("CE", "SOLVER.BASE_LR")]  # a dotted literal is a lookup by string


WHICH = "AQE"


def aqe(cfg):
    group = cfg.TEST[WHICH]
    return {k: group[k] for k in ("QE_K",)}       # computed group and key, both module literals


def jitter(inp):                                  # a group handed to a function of the module
    return inp.HUE, inp.PROB


def transforms(cfg):
    return jitter(cfg.INPUT.CJ), cfg.DATASETS.get("NAMES")


def message(cfg):
    raise ValueError(f"SOLVER.STEPS{cfg.SOLVER.GAMMA}")  # an f-string is a message; its fields are code


def unrelated(rea):
    return rea.PROB, other.REA.VERSION_TAG        # an un-aliased parameter: one component is not enough
'''


def test_the_checker_finds_each_kind_of_read_and_only_those(tmp_path):
    source = tmp_path / "module.py"
    source.write_text(textwrap.dedent(SOURCE))
    reads = find_key_reads([source])
    assert unread_keys(KEYS, reads) == [
        "OUTPUT_DIR", "VERSION", "MODEL.BACKBONE.NAME", "MODEL.HEADS.NORM", "MODEL.LOSSES.TRI.SCALE",
        "MODEL.LOSSES.TRI.MARGIN", "TEST.AQE.ALPHA", "TEST.RERANK.K1", "SOLVER.STEPS", "INPUT.REA.PROB",
        "DATASETS.TESTS", "KD.SCALE",
    ]


def test_the_checker_reports_a_syntax_error_with_the_file(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n")
    with pytest.raises(SyntaxError, match="broken.py"):
        find_key_reads([broken])


def test_an_unsupported_key_set_to_another_value_logs_a_warning_naming_it(monkeypatch, caplog):
    monkeypatch.setitem(UNSUPPORTED_KEYS, "TEST.FRAME_CHUNK", "fast-reid feature X is not implemented")
    with caplog.at_level(logging.WARNING, logger="fastreid.config.loading"):
        load_config(opts=["TEST.FRAME_CHUNK", "64"])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "TEST.FRAME_CHUNK = 64" in warnings[0] and "feature X" in warnings[0]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fastreid.config.loading"):
        load_config(opts=["TEST.FRAME_CHUNK", str(get_cfg().TEST.FRAME_CHUNK)])  # the default: nothing to say
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_config_of_another_schema_version_is_an_error_naming_version(tmp_path):
    current = tmp_path / "current.yaml"
    current.write_text(get_cfg().dump())
    assert load_config(str(current)).VERSION == get_cfg().VERSION
    newer = tmp_path / "newer.yaml"
    newer.write_text("VERSION: 2\n")
    with pytest.raises(ConfigError, match=r"VERSION 2 in .*newer.yaml.*schema version 1"):
        load_config(str(newer))
