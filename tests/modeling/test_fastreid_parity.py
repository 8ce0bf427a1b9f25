"""fast-reid's checkpoints give fast-reid's features in fastreid (issue 12).

Each fixture of tests/fixtures/reference/fastreid/ holds the eval-mode features that fast-reid 1.4.0's own code
computed for one published recipe (tools/dev/make_fastreid_fixtures.py) with weights from the formula of
``cases.py``, and fast-reid's state-dict names. Here the same weights, under fast-reid's names, are saved as a
fast-reid checkpoint (with its optimizer, schedulers and epoch), loaded into fastreid's model built from our copy
of the recipe, and fastreid's features must match to 1e-5 relative.
"""
import importlib.util
import logging
from pathlib import Path

import pytest
import torch

from fastreid.config import get_cfg
from fastreid.modeling import build_backbone, build_model
from fastreid.modeling.layouts.fast_reid import fast_reid, from_fast_reid_key
from fastreid.utils.checkpoint import Checkpointer, load_inference_weights

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "reference" / "fastreid"

_spec = importlib.util.spec_from_file_location("fastreid_fixture_cases", FIXTURES / "cases.py")
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)


def _build(name: str) -> torch.nn.Module:
    recipe, _, _ = cases.CASES[name]
    cfg = get_cfg()
    cfg.merge_from_file(str(REPO / "configs" / recipe))
    cfg.merge_from_list(cases.case_opts(name))
    return build_model(cfg)


def _fixture(name: str):
    record = torch.load(FIXTURES / f"{name}.pt", weights_only=True)
    return cases.decode_keys(record["keys"]), record["features"]


def _fast_reid_checkpoint(keys, path: Path) -> Path:
    """A file as fast-reid's Checkpointer writes it, with the formula's weights under fast-reid's names."""
    torch.save(
        {
            "model": cases.recipe_weights(keys),
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
            "lr_sched": {"last_epoch": 3, "base_lrs": [0.1]},
            "epoch": 3,
            "metric": 0.5,
        },
        path,
    )
    return path


def _assert_features(model: torch.nn.Module, name: str, expected: torch.Tensor) -> None:
    with torch.no_grad():
        features = model.eval()(cases.input_images(name))
    torch.testing.assert_close(features, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())


@pytest.mark.parametrize("name", sorted(cases.CASES))
def test_fast_reid_checkpoint_reproduces_its_features(name, tmp_path, caplog):
    keys, expected = _fixture(name)
    model = _build(name)
    path = _fast_reid_checkpoint(keys, tmp_path / "model_final.pth")
    with caplog.at_level(logging.INFO):
        extra = Checkpointer(model, save_to_disk=False).load(str(path))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert "as a fast_reid checkpoint" in caplog.text
    assert extra.get("fast_reid_epoch") == 3 and "iteration" not in extra and "optimizer" not in extra
    _assert_features(model, name, expected)


def _model_section(path: Path) -> str:
    """The MODEL section of a recipe without what only training reads (losses, frozen layers, class count)."""
    cfg = get_cfg()
    cfg.merge_from_file(str(path))
    model = cfg.MODEL.clone()
    del model["LOSSES"], model["FREEZE_LAYERS"]
    model.HEADS.NUM_CLASSES = 0
    return model.dump()


def test_every_published_recipe_builds_a_fixture_model():
    """Each fast-reid recipe in configs/ builds the model of a fixture's recipe: the datasets' copies of a
    recipe differ only in data, input size and schedule."""
    covered = {_model_section(REPO / "configs" / recipe) for recipe, _, extra in cases.CASES.values() if not extra}
    # fast-reid publishes image recipes for these datasets; configs/ also holds fastreid's own (Synthetic,
    # torchreid's recipes, the video recipes).
    fastreid_dirs = ("Market1501", "DukeMTMC", "MSMT17", "VeRi", "VehicleID", "VERIWild")
    published = [
        p for p in sorted((REPO / "configs").rglob("*.yml"))
        if p.parent.name in fastreid_dirs and not p.name.startswith("Base-")
    ]
    assert len(published) == 47 - 4
    missing = [str(p.relative_to(REPO)) for p in published if _model_section(p) not in covered]
    assert not missing, missing


def test_resumed_fast_reid_checkpoint_keeps_its_classifier(tmp_path):
    keys, _ = _fixture("mgn_R50-ibn")
    model = _build("mgn_R50-ibn")
    path = _fast_reid_checkpoint(keys, tmp_path / "model_0003.pth")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    Checkpointer(model, save_to_disk=False, optimizer=optimizer).load(str(path))
    state = cases.recipe_weights(keys)
    for branch in ("b1", "b21", "b33"):
        assert torch.equal(model.heads[branch].classifier.weight, state[f"{branch}_head.weight"])
    assert optimizer.param_groups[0]["lr"] == 0.01  # fast-reid's optimizer state is not forced onto ours


def test_baseline_classifier_and_inference_load(tmp_path):
    keys, expected = _fixture("bagtricks_R50")
    path = _fast_reid_checkpoint(keys, tmp_path / "model_final.pth")
    model = _build("bagtricks_R50")
    load_inference_weights(model, str(path))
    torch.testing.assert_close(model.heads.classifier.weight, cases.recipe_weights(keys)["heads.weight"])
    _assert_features(model, "bagtricks_R50", expected)


def test_fast_reid_names_map_onto_fastreid_model_keys():
    keys, _ = _fixture("mgn_R50-ibn")
    model_keys = set(_build("mgn_R50-ibn").state_dict())
    assert {from_fast_reid_key(name) for name, _, _ in keys} == model_keys


def test_fastreid_checkpoint_is_not_taken_for_fast_reid(tmp_path):
    model = _build("bagtricks_R50")
    state = model.state_dict()
    Checkpointer(model, str(tmp_path)).save("model_0000", iteration=5)
    written = torch.load(tmp_path / "model_0000.pth", weights_only=True)
    assert fast_reid(written, set(state)) is None
    mgn = _build("mgn_R50-ibn")
    assert fast_reid({"model": mgn.state_dict()}, set(mgn.state_dict())) is None
    # A torchreid file ("state_dict" entry) is not fast-reid's either.
    assert fast_reid({"state_dict": {"heads.weight": torch.zeros(1)}}, set(state)) is None


def test_pixel_statistics_of_older_fast_reid_files_are_reported_not_loaded(caplog):
    state = {"heads.weight": torch.zeros(2, 3), "pixel_mean": torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)}
    with caplog.at_level(logging.INFO):
        converted = fast_reid({"model": state}, {"heads.classifier.weight"})
    assert set(converted["model"]) == {"heads.classifier.weight"}
    assert "[1.0, 2.0, 3.0]" in caplog.text


@pytest.mark.parametrize("kind, padding, ceil_mode", [("ceil", 0, True), ("padded", 1, False)])
def test_stem_pool_selects_fast_reid_or_torchvision_max_pool(kind, padding, ceil_mode):
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.PRETRAIN", False])
    assert cfg.MODEL.BACKBONE.STEM_POOL == "ceil"  # fast-reid's, the default of its recipes
    cfg.MODEL.BACKBONE.STEM_POOL = kind
    pool = build_backbone(cfg).maxpool
    assert (pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode) == (3, 2, padding, ceil_mode)


def test_unknown_stem_pool_is_named():
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.PRETRAIN", False])
    cfg.MODEL.BACKBONE.STEM_POOL = "same"
    with pytest.raises(ValueError, match="STEM_POOL"):
        build_backbone(cfg)
