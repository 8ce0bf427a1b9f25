import json
import math
from pathlib import Path

import pytest
import torch

from fastreid.config import CfgNode, ConfigError, configurable, get_cfg, translate_config_dict

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE_CONFIGS = Path(__file__).resolve().parents[3] / "shared" / "reference-configs" / "fast-reid"


def _lookup(cfg, full_key):
    node = cfg
    for part in full_key.split("."):
        node = node[part]
    return node


def _write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_defaults_equal_the_seed_reference_key_by_key():
    seed = json.loads((FIXTURES / "seed_defaults.json").read_text())["keys"]
    cfg = get_cfg()
    assert len(seed) > 100
    for key, expected in seed.items():
        value = _lookup(cfg, key)
        if key == "MODEL.DEVICE":
            assert value == ("cuda" if torch.cuda.is_available() else "cpu")
            continue
        assert type(value).__name__ == expected["type"], key
        if isinstance(value, float):
            assert math.isclose(value, expected["value"], rel_tol=1e-12), key
        elif isinstance(value, (list, tuple)):
            assert list(value) == pytest.approx(expected["value"]), key
        else:
            assert value == expected["value"], key


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only default")
def test_device_defaults_to_cpu_without_cuda():
    assert get_cfg().MODEL.DEVICE == "cpu"


def test_base_chain_is_relative_to_each_file_and_recursive(tmp_path):
    _write(tmp_path / "Base-root.yml", "SOLVER:\n  BASE_LR: 0.1\n  MAX_EPOCH: 7\nMODEL:\n  BACKBONE:\n    DEPTH: 18x\n")
    _write(tmp_path / "family" / "Base-mid.yml", "_BASE_: ../Base-root.yml\nSOLVER:\n  MAX_EPOCH: 9\n")
    leaf = _write(tmp_path / "family" / "deep" / "leaf.yml", "_BASE_: ../Base-mid.yml\nSOLVER:\n  IMS_PER_BATCH: 16\n")
    cfg = get_cfg()
    cfg.merge_from_file(leaf)
    assert cfg.SOLVER.BASE_LR == 0.1
    assert cfg.SOLVER.MAX_EPOCH == 9
    assert cfg.SOLVER.IMS_PER_BATCH == 16
    assert cfg.MODEL.BACKBONE.DEPTH == "18x"


def test_base_cycle_is_detected(tmp_path):
    a = _write(tmp_path / "a.yml", "_BASE_: b.yml\n")
    _write(tmp_path / "b.yml", "_BASE_: a.yml\n")
    with pytest.raises(ConfigError, match="cycle"):
        get_cfg().merge_from_file(a)


def test_missing_base_names_the_file_and_its_parent(tmp_path):
    child = _write(tmp_path / "child.yml", "_BASE_: nowhere.yml\n")
    with pytest.raises(ConfigError, match=r"nowhere\.yml.*child\.yml"):
        get_cfg().merge_from_file(child)


def test_unknown_key_in_file_names_key_file_and_closest_key(tmp_path):
    _write(tmp_path / "base.yml", "SOLVER:\n  BASE_LR: 0.1\n")
    bad = _write(tmp_path / "bad.yml", "_BASE_: base.yml\nSOLVER:\n  BASE_RL: 0.2\n")
    with pytest.raises(ConfigError) as info:
        get_cfg().merge_from_file(bad)
    message = str(info.value)
    assert "SOLVER.BASE_RL" in message and "bad.yml" in message and "SOLVER.BASE_LR" in message


def test_unknown_override_suggests_closest_key():
    with pytest.raises(ConfigError, match=r"MODEL\.BACKBONE\.DEPHT.*did you mean 'MODEL\.BACKBONE\.DEPTH'"):
        get_cfg().merge_from_list(["MODEL.BACKBONE.DEPHT", "18x"])


def test_overrides_are_parsed_and_type_checked():
    cfg = get_cfg()
    cfg.merge_from_list(
        ["SOLVER.BASE_LR", "1", "SOLVER.STEPS", "[3, 5]", "DATASETS.NAMES", "('A', 'B')", "MODEL.WEIGHTS", "1e-3"]
    )
    assert cfg.SOLVER.BASE_LR == 1.0 and isinstance(cfg.SOLVER.BASE_LR, float)
    assert cfg.SOLVER.STEPS == [3, 5]
    assert cfg.DATASETS.NAMES == ("A", "B")
    assert cfg.MODEL.WEIGHTS == "1e-3"  # a string key keeps the text as written
    for key, value in [("SOLVER.MAX_EPOCH", "1.5"), ("TEST.RERANK.ENABLED", "3"), ("SOLVER.STEPS", "abc")]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            get_cfg().merge_from_list([key, value])
    with pytest.raises(ConfigError, match="pairs"):
        get_cfg().merge_from_list(["SOLVER.BASE_LR"])
    with pytest.raises(ConfigError, match="group of keys"):
        get_cfg().merge_from_list(["SOLVER", "1"])


def test_dumped_config_reloads_to_an_equal_tree(tmp_path):
    cfg = get_cfg()
    cfg.merge_from_list(["SOLVER.STEPS", "[2, 4]", "MODEL.LOSSES.NAME", "('CrossEntropyLoss', 'TripletLoss')"])
    path = _write(tmp_path / "config.yaml", cfg.dump())
    reloaded = get_cfg()
    reloaded.merge_from_file(path)
    assert reloaded == cfg
    assert isinstance(reloaded.MODEL.LOSSES.NAME, tuple)


LATER_SCHEMA = [
    ("SOLVER.AMP.ENABLED", True, "SOLVER.FP16_ENABLED"),
    ("INPUT.FLIP.ENABLED", False, "INPUT.DO_FLIP"),
    ("INPUT.FLIP.PROB", 0.25, "INPUT.FLIP_PROB"),
    ("INPUT.PADDING.ENABLED", False, "INPUT.DO_PAD"),
    ("INPUT.PADDING.SIZE", 4, "INPUT.PADDING"),
    ("INPUT.PADDING.MODE", "reflect", "INPUT.PADDING_MODE"),
    ("INPUT.AUTOAUG.ENABLED", True, "INPUT.DO_AUTOAUG"),
    ("INPUT.AUTOAUG.PROB", 0.1, "INPUT.AUTOAUG_PROB"),
    ("INPUT.AUGMIX.ENABLED", True, "INPUT.DO_AUGMIX"),
    ("INPUT.AUGMIX.PROB", 0.3, "INPUT.AUGMIX_PROB"),
    ("INPUT.AFFINE.ENABLED", True, "INPUT.DO_AFFINE"),
    ("TEST.FLIP.ENABLED", True, "TEST.FLIP_ENABLED"),
    ("TEST.ROC.ENABLED", True, "TEST.ROC_ENABLED"),
]


@pytest.mark.parametrize("later_key,value,key", LATER_SCHEMA)
def test_later_schema_keys_map_onto_the_tree(tmp_path, later_key, value, key):
    parts = later_key.split(".")
    text = "".join("  " * i + f"{p}:\n" for i, p in enumerate(parts[:-1])) + "  " * (len(parts) - 1)
    text += f"{parts[-1]}: {value!r}\n".replace("'", "")
    cfg = get_cfg()
    cfg.merge_from_file(_write(tmp_path / "later.yml", text))
    assert _lookup(cfg, key) == value
    override = get_cfg()
    override.merge_from_list([later_key, str(value)])
    assert _lookup(override, key) == value


@pytest.mark.parametrize(
    "name,pk,naive",
    [("TrainingSampler", False, None), ("NaiveIdentitySampler", True, True), ("BalancedIdentitySampler", True, False)],
)
def test_sampler_names_map_onto_pk_flags(name, pk, naive):
    cfg = get_cfg()
    cfg.merge_from_list(["DATALOADER.NAIVE_WAY", "True", "DATALOADER.SAMPLER_TRAIN", name])
    assert cfg.DATALOADER.PK_SAMPLER is pk
    assert cfg.DATALOADER.SAMPLER_TRAIN == ""
    if naive is not None:
        assert cfg.DATALOADER.NAIVE_WAY is naive


def test_other_sampler_names_are_kept_by_name():
    cfg = get_cfg()
    cfg.merge_from_list(["DATALOADER.SAMPLER_TRAIN", "SetReWeightSampler"])
    assert cfg.DATALOADER.SAMPLER_TRAIN == "SetReWeightSampler"


def test_translation_reports_changes_and_leaves_input_alone():
    original = {"SOLVER": {"AMP": {"ENABLED": True}, "BASE_LR": 0.1}}
    translated, notes = translate_config_dict(original)
    assert translated == {"SOLVER": {"FP16_ENABLED": True, "BASE_LR": 0.1}}
    assert notes == ["SOLVER.AMP.ENABLED -> SOLVER.FP16_ENABLED"]
    assert original == {"SOLVER": {"AMP": {"ENABLED": True}, "BASE_LR": 0.1}}
    assert translate_config_dict({"SOLVER": {"FP16_ENABLED": True}})[1] == []


def test_translated_file_is_logged(tmp_path, caplog):
    path = _write(tmp_path / "later.yml", "SOLVER:\n  AMP:\n    ENABLED: True\n")
    with caplog.at_level("INFO", logger="fastreid.config"):
        get_cfg().merge_from_file(path)
    assert "later.yml" in caplog.text and "SOLVER.AMP.ENABLED -> SOLVER.FP16_ENABLED" in caplog.text


@pytest.mark.skipif(not REFERENCE_CONFIGS.is_dir(), reason="fast-reid reference configs are not beside this checkout")
def test_every_published_fast_reid_recipe_merges():
    files = sorted(REFERENCE_CONFIGS.rglob("*.yml"))
    assert len(files) == 47
    for path in files:
        cfg = get_cfg()
        cfg.merge_from_file(str(path))
        assert cfg.DATASETS.NAMES, path
    bagtricks = get_cfg()
    bagtricks.merge_from_file(str(REFERENCE_CONFIGS / "Market1501" / "bagtricks_R50.yml"))
    assert bagtricks.SOLVER.FP16_ENABLED and bagtricks.INPUT.DO_FLIP and bagtricks.INPUT.DO_PAD
    assert bagtricks.DATALOADER.PK_SAMPLER and bagtricks.DATALOADER.NAIVE_WAY
    assert bagtricks.MODEL.HEADS.POOL_LAYER == "GlobalAvgPool"
    assert bagtricks.SOLVER.STEPS == [40, 90]


class _Head:
    @configurable
    def __init__(self, *, in_feat: int, num_classes: int, scale: float = 1.0):
        self.in_feat, self.num_classes, self.scale = in_feat, num_classes, scale

    @classmethod
    def from_config(cls, cfg, in_feat):
        return {"in_feat": in_feat, "num_classes": cfg.MODEL.HEADS.NUM_CLASSES, "scale": cfg.MODEL.HEADS.SCALE}


def _loader_args(cfg, batch_size=None):
    return {"batch_size": batch_size or cfg.SOLVER.IMS_PER_BATCH, "workers": cfg.DATALOADER.NUM_WORKERS}


@configurable(from_config=_loader_args)
def _make_loader(*, batch_size: int, workers: int):
    return batch_size, workers


def test_configurable_class_from_config_equals_explicit_arguments():
    cfg = get_cfg()
    cfg.MODEL.HEADS.NUM_CLASSES = 11
    from_cfg = _Head(cfg, in_feat=64)
    explicit = _Head(in_feat=64, num_classes=11, scale=128)
    assert vars(from_cfg) == vars(explicit)
    assert _Head(cfg=cfg, in_feat=8).in_feat == 8
    # explicit keyword arguments that from_config does not take override its result
    assert _Head(cfg, in_feat=64, scale=2.0).scale == 2.0


def test_configurable_function():
    cfg = get_cfg()
    assert _make_loader(cfg) == (cfg.SOLVER.IMS_PER_BATCH, cfg.DATALOADER.NUM_WORKERS)
    assert _make_loader(cfg, batch_size=3) == (3, cfg.DATALOADER.NUM_WORKERS)
    assert _make_loader(batch_size=5, workers=0) == (5, 0)


def test_configurable_without_from_config_fails_clearly():
    class NoFactory:
        @configurable
        def __init__(self, x=1):
            self.x = x

    with pytest.raises(AttributeError, match="from_config"):
        NoFactory(get_cfg())
    assert NoFactory(x=2).x == 2


def test_new_allowed_nodes_accept_new_keys(tmp_path):
    cfg = get_cfg()
    cfg.EXTRA = CfgNode(new_allowed=True)
    cfg.merge_from_file(_write(tmp_path / "extra.yml", "EXTRA:\n  ANYTHING: 3\n"))
    assert cfg.EXTRA.ANYTHING == 3
