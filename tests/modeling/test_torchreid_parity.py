"""torchreid's weights give torchreid's features in fastreid (configs/torchreid/), read from its checkpoint files.

The oracle fixtures (tests/fixtures/reference/torchreid/<name>.pt) hold torchreid 0.2.5's eval-mode features
for weights from the formula in weights.py next to them; tools/dev/make_torchreid_fixtures.py made them.
"""
import logging
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fastreid.config import get_cfg
from fastreid.modeling import build_model
from fastreid.modeling.layouts.torchreid import torchreid as torchreid_layout
from fastreid.modeling.heads import TorchreidHead
from fastreid.utils.checkpoint import Checkpointer, load_inference_weights

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "reference" / "torchreid"
ARCHITECTURES = ("resnet50", "resnet50_fc512")


# The formula shared with the fixture generator (tests/fixtures is not a package).
formula = SimpleNamespace(**runpy.run_path(str(FIXTURES / "weights.py")))


def _reference(name):
    return torch.load(FIXTURES / f"{name}.pt", weights_only=True)


def _model(name, num_classes):
    cfg = get_cfg()
    cfg.merge_from_file(str(REPO / "configs" / "torchreid" / f"{name}.yml"))
    cfg.merge_from_list(
        ["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", False, "MODEL.HEADS.NUM_CLASSES", num_classes]
    )
    torch.manual_seed(0)
    return build_model(cfg)


def _torchreid_state_dict(model, reference):
    """The formula's weights under torchreid's key names, shaped as ``model``'s tensors of the same names."""
    tensors = {k.split(".", 1)[1]: v for k, v in model.state_dict().items()}
    assert sorted(tensors) == sorted(reference["state_dict_keys"]), "fastreid's modules are not torchreid's"
    names = reference["state_dict_keys"]
    return formula.deterministic_state_dict((k, tuple(tensors[k].shape), tensors[k].dtype) for k in names)


def _engine_checkpoint(state_dict, **extra):
    """A file as torchreid's engine saves it under DataParallel (``model.pth.tar-N``)."""
    optimizer = {
        "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(2)}},
        "param_groups": [{"lr": 3e-4, "params": [0]}],
    }
    scheduler = {"step_size": 20, "gamma": 0.1, "last_epoch": 12}
    return {"state_dict": {"module." + k: v for k, v in state_dict.items()}, "epoch": 12, "rank1": 0.875,
            "optimizer": optimizer, "scheduler": scheduler, **extra}


def _assert_matches(out, ref):
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_torchreid_checkpoint_gives_torchreid_features(name, tmp_path, caplog):
    reference = _reference(name)
    model = _model(name, reference["num_classes"])
    path = tmp_path / "model.pth.tar-12"
    torch.save(_engine_checkpoint(_torchreid_state_dict(model, reference)), path)
    with caplog.at_level(logging.INFO):
        extra = load_inference_weights(model, str(path))
    assert _warnings(caplog) == []
    assert "Read" in caplog.text and "torchreid checkpoint" in caplog.text
    assert "optimizer, scheduler not loaded" in caplog.text
    assert extra == {"torchreid_epoch": 12, "torchreid_rank1": 0.875}

    model.eval()
    with torch.no_grad():
        features = model(formula.input_batch(size=tuple(reference["input_size"][2:])))
        logits = model.heads.classifier(features)
    assert features.shape == reference["features"].shape
    _assert_matches(features, reference["features"])
    _assert_matches(logits, reference["logits"])


def test_model_zoo_state_dict_fine_tunes_with_its_classifier(tmp_path, caplog):
    """torchreid's model-zoo files are bare state dicts; a fine-tuning load keeps the trained classifier and
    gives no iteration to resume from."""
    reference = _reference("resnet50_fc512")
    model = _model("resnet50_fc512", reference["num_classes"])
    weights = _torchreid_state_dict(model, reference)
    path = tmp_path / "resnet50_fc512_market.pth"
    torch.save(weights, path)
    with caplog.at_level(logging.INFO):
        extra = Checkpointer(model, save_to_disk=False).load(str(path), checkpointables=[])
    assert _warnings(caplog) == [] and extra == {}
    assert torch.equal(model.heads.classifier.weight, weights["classifier.weight"])
    assert torch.equal(model.heads.classifier.bias, weights["classifier.bias"])
    assert torch.equal(model.heads.fc[1].running_var, weights["fc.1.running_var"])


def test_fastreid_checkpoints_are_not_read_as_torchreid(tmp_path):
    model = _model("resnet50", 5)
    keys = set(model.state_dict())
    Checkpointer(model, str(tmp_path)).save("model_final", iteration=9)
    written = torch.load(tmp_path / "model_final.pth", weights_only=True)
    assert torchreid_layout(written, keys) is None
    assert torchreid_layout(model.state_dict(), keys) is None  # a bare fastreid state dict
    assert torchreid_layout({"model": {"classifier.weight": torch.zeros(1)}}, keys) is None
    assert torchreid_layout({"state_dict": {"backbone.conv1.weight": torch.zeros(1)}}, keys) is None


def test_torchreid_keys_map_only_onto_the_loaded_model():
    keys = {"backbone.conv1.weight", "heads.classifier.weight", "heads.classifier.bias"}
    weights = {f"module.{k}": torch.ones(1) for k in ("conv1.weight", "classifier.weight", "extra.w")}
    converted = torchreid_layout({"state_dict": weights, "epoch": 3}, keys)
    assert sorted(converted["model"]) == ["backbone.conv1.weight", "extra.w", "heads.classifier.weight"]
    assert "iteration" not in converted and "epoch" not in converted and converted["torchreid_epoch"] == 3


def test_torchreid_engine_file_with_numpy_rank1_loads(tmp_path):
    """torchreid's engine stores ``rank1`` as the numpy.float32 its evaluator returns."""
    model = _model("resnet50", 5)
    weights = {k.split(".", 1)[1]: v for k, v in model.state_dict().items()}
    path = tmp_path / "model.pth.tar-60"
    torch.save(_engine_checkpoint(weights, rank1=np.float32(0.875)), path)
    extra = load_inference_weights(model, str(path))
    assert extra["torchreid_rank1"] == pytest.approx(0.875)


def test_eval_only_model_without_class_count_loads_silently(tmp_path, caplog):
    """``--eval-only`` configs leave MODEL.HEADS.NUM_CLASSES at 0: the trained classifier is set aside."""
    reference = _reference("resnet50")
    model = _model("resnet50", 0)
    path = tmp_path / "model.pth.tar-60"
    torch.save(_engine_checkpoint(_torchreid_state_dict(model, reference)), path)
    with caplog.at_level(logging.INFO):
        load_inference_weights(model, str(path))
    assert _warnings(caplog) == []
    with torch.no_grad():
        _assert_matches(model.eval()(formula.input_batch()), reference["features"])


def test_head_from_config_matches_explicit_arguments():
    cfg = get_cfg()
    cfg.merge_from_file(str(REPO / "configs" / "torchreid" / "resnet50_fc512.yml"))
    cfg.MODEL.HEADS.NUM_CLASSES = 3
    torch.manual_seed(0)
    from_cfg = TorchreidHead(cfg, 64)
    torch.manual_seed(0)
    explicit = TorchreidHead(feat_dim=64, num_classes=3, fc_dims=(512,), pool_type="GlobalAvgPool")
    assert from_cfg.embedding_dim == explicit.embedding_dim == 512
    for (k1, v1), (k2, v2) in zip(from_cfg.state_dict().items(), explicit.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    assert list(from_cfg.state_dict()) == ["fc.0.weight", "fc.0.bias", "fc.1.weight", "fc.1.bias", "fc.1.running_mean",
                                           "fc.1.running_var", "fc.1.num_batches_tracked", "classifier.weight",
                                           "classifier.bias"]
