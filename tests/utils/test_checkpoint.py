import logging
import os
import random

import numpy as np
import pytest
import torch
from torch import nn

from fastreid.config import get_cfg
from fastreid.modeling import build_model
from fastreid.utils.checkpoint import INFERENCE_SKIP_PREFIXES, Checkpointer, load_inference_weights


class _Net(nn.Module):
    def __init__(self, num_classes=3):
        super().__init__()
        self.backbone = nn.Linear(4, 5)
        self.classifier = nn.Linear(5, num_classes)


def _trained(tmp_path):
    torch.manual_seed(0)
    model = _Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    for _ in range(2):
        model.classifier(model.backbone(torch.randn(2, 4))).sum().backward()
        opt.step()
        sched.step()
    return model, opt, sched, Checkpointer(model, str(tmp_path), save_to_disk=True, optimizer=opt, scheduler=sched)


def test_round_trip_restores_model_optimizer_scheduler_rng_and_extra(tmp_path):
    model, opt, sched, ckpt = _trained(tmp_path)
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    ckpt.save("model_0001", iteration=7, epoch=1)
    expected_draws = (random.random(), float(np.random.rand()), torch.rand(1).item())

    torch.manual_seed(123)
    model2 = _Net()
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.1, momentum=0.9)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, 1, gamma=0.5)
    ckpt2 = Checkpointer(model2, str(tmp_path), save_to_disk=True, optimizer=opt2, scheduler=sched2)
    assert ckpt2.has_checkpoint()
    extra = ckpt2.resume_or_load("", resume=True)
    assert extra["iteration"] == 7 and extra["epoch"] == 1
    draws = (random.random(), float(np.random.rand()), torch.rand(1).item())
    assert draws == expected_draws
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    m1 = [s["momentum_buffer"] for s in opt.state.values()]
    m2 = [s["momentum_buffer"] for s in opt2.state.values()]
    assert all(torch.equal(a, b) for a, b in zip(m1, m2)) and len(m1) == 4
    assert sched2.last_epoch == 2 and opt2.param_groups[0]["lr"] == pytest.approx(0.025)


def test_resume_false_loads_weights_only_not_optimizer(tmp_path):
    model, opt, sched, ckpt = _trained(tmp_path)
    ckpt.save("model_final")
    model2 = _Net()
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.1, momentum=0.9)
    extra = Checkpointer(model2, str(tmp_path / "other"), optimizer=opt2).resume_or_load(
        str(tmp_path / "model_final.pth"), resume=True)  # no checkpoint in other/ -> loads the given weights
    assert torch.equal(model2.backbone.weight, model.backbone.weight)
    assert not opt2.state and "optimizer" in extra  # left unprocessed


def test_atomic_save_keeps_previous_checkpoint_on_crash(tmp_path, monkeypatch):
    model, opt, sched, ckpt = _trained(tmp_path)
    ckpt.save("model_0000", iteration=3)
    good = torch.load(tmp_path / "model_0000.pth", weights_only=True)
    real_save = torch.save

    def crashing_save(obj, f, *a, **k):
        f.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crashing_save)
    with torch.no_grad():
        model.backbone.weight.add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save("model_0001", iteration=5)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save("model_0000", iteration=5)  # overwriting the same name is atomic too
    monkeypatch.setattr(torch, "save", real_save)

    assert (tmp_path / "last_checkpoint").read_text() == "model_0000.pth"
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000.pth"]  # no temp leftovers
    fresh = _Net()
    extra = Checkpointer(fresh, str(tmp_path)).resume_or_load("", resume=True)
    assert extra["iteration"] == 3
    assert torch.equal(fresh.backbone.weight, good["model"]["backbone.weight"])


def test_a_classifier_of_another_shape_is_skipped_with_one_info_line(tmp_path, caplog):
    src = _Net(num_classes=3)
    Checkpointer(src, str(tmp_path), save_to_disk=True).save("w")
    dst = _Net(num_classes=7)
    before = dst.classifier.weight.clone()
    with caplog.at_level(logging.INFO):
        Checkpointer(dst, "").load(str(tmp_path / "w.pth"))
    assert torch.equal(dst.backbone.weight, src.backbone.weight)
    assert torch.equal(dst.classifier.weight, before)
    # Fine-tuning on other identities (issue 11): one INFO line, no warning table.
    assert _warnings(caplog) == []
    lines = [r.getMessage() for r in caplog.records if "not loaded" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]
    text = lines[0]
    assert "classifier.weight (3, 5) in checkpoint, (7, 5) in model" in text
    assert "classifier.bias (3,) in checkpoint, (7,) in model" in text
    assert "missing key" not in caplog.text  # a key skipped for its shape is reported once, as a shape mismatch


def test_bare_state_dict_and_unexpected_keys(tmp_path, caplog):
    src = _Net()
    sd = dict(src.state_dict(), extra_head=torch.zeros(1))
    torch.save(sd, tmp_path / "bare.pth")
    dst = _Net()
    with caplog.at_level(logging.WARNING):
        Checkpointer(dst).load(str(tmp_path / "bare.pth"))
    assert torch.equal(dst.classifier.bias, src.classifier.bias)
    assert "unexpected key" in caplog.text and "extra_head" in caplog.text


class _Evil:
    def __reduce__(self):
        return (os.makedirs, ("/tmp/fastreid_pwned_marker_dir",))


def test_weights_only_refuses_python_objects(tmp_path):
    marker = "/tmp/fastreid_pwned_marker_dir"
    if os.path.isdir(marker):
        os.rmdir(marker)
    torch.save({"model": _Net().state_dict(), "evil": _Evil()}, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match="weights_only"):
        Checkpointer(_Net()).load(str(tmp_path / "evil.pth"))
    assert not os.path.exists(marker)


def test_missing_and_corrupt_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        Checkpointer(_Net()).load(str(tmp_path / "nope.pth"))
    (tmp_path / "junk.pth").write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth"):
        Checkpointer(_Net()).load(str(tmp_path / "junk.pth"))
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(ValueError, match="not a dict"):
        Checkpointer(_Net()).load(str(tmp_path / "tensor.pth"))


def test_save_tag_last_false_and_non_main_process_does_not_write(tmp_path):
    ckpt = Checkpointer(_Net(), str(tmp_path), save_to_disk=True)
    ckpt.save("model_0000")
    ckpt.save("model_best", tag_last=False)
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000.pth"
    assert (tmp_path / "model_best.pth").exists()
    Checkpointer(_Net(), str(tmp_path / "x"), save_to_disk=False).save("m")
    assert not (tmp_path / "x").exists()


# --- each incompatible key once, shared modules, metadata, inference-only loads ---------------------------------


def _warnings(caplog):
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_non_classifier_shape_mismatch_is_reported_once(tmp_path, caplog):
    src = _Net()
    sd = dict(src.state_dict(), **{"backbone.weight": torch.zeros(6, 4)})
    torch.save({"model": sd}, tmp_path / "w.pth")
    # Refused unless a partial load is asked for (issue 11).
    with pytest.raises(ValueError, match="MODEL.WEIGHTS_PARTIAL"):
        Checkpointer(_Net()).load(str(tmp_path / "w.pth"))
    with pytest.raises(ValueError, match="MODEL.WEIGHTS_PARTIAL"):
        load_inference_weights(_Net(), str(tmp_path / "w.pth"), skip_prefixes=("classifier",))
    for load in (lambda m: Checkpointer(m, partial=True).load(str(tmp_path / "w.pth")),
                 lambda m: load_inference_weights(m, str(tmp_path / "w.pth"), skip_prefixes=("classifier",),
                                                  partial=True)):
        caplog.clear()
        dst = _Net()
        with caplog.at_level(logging.DEBUG):
            load(dst)
        records = _warnings(caplog)
        assert len(records) == 1 and records[0].levelno == logging.WARNING
        text = records[0].getMessage()
        assert "shape in checkpoint" in text and "(6, 4)" in text and "(5, 4)" in text
        assert caplog.text.count("backbone.weight") == 1 and "missing key" not in caplog.text
        assert torch.equal(dst.classifier.weight, src.classifier.weight)


class _Shared(nn.Module):
    """``head`` is ``backbone`` under a second name; ``extra`` is the only truly new module."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(4, 5)
        self.head = self.backbone
        self.extra = nn.Linear(5, 2)


def test_keys_of_a_shared_module_loaded_under_another_name_are_not_missing(tmp_path, caplog):
    src = _Net()
    torch.save({"backbone." + k: v for k, v in src.backbone.state_dict().items()}, tmp_path / "bb.pth")
    dst = _Shared()
    assert set(dst.state_dict()) >= {"head.weight", "backbone.weight"}
    with caplog.at_level(logging.WARNING):
        Checkpointer(dst, partial=True).load(str(tmp_path / "bb.pth"))
    assert torch.equal(dst.head.weight, src.backbone.weight)
    text = caplog.text
    assert "2 model key(s) not found" in text and "extra.weight" in text and "extra.bias" in text
    assert "head." not in text

    caplog.clear()
    torch.save({"extra." + k: v for k, v in _Shared().extra.state_dict().items()}, tmp_path / "ex.pth")
    with caplog.at_level(logging.WARNING):
        Checkpointer(_Shared(), partial=True).load(str(tmp_path / "ex.pth"))
    # Loaded under neither name: both names are missing.
    assert all(k in caplog.text for k in ("head.weight", "head.bias", "backbone.weight", "backbone.bias"))


def test_metadata_is_in_every_file_and_loads_weights_only(tmp_path):
    cfg = get_cfg()
    cfg.MODEL.HEADS.NUM_CLASSES = 3
    meta = {"config": cfg.dump(), "num_classes": 3}
    ckpt = Checkpointer(_Net(), str(tmp_path), save_to_disk=True, metadata=meta)
    ckpt.save("model_0000", iteration=0)
    ckpt.metadata["note"] = [1, 2.5, "x", None, torch.ones(2)]
    ckpt.save("model_final", iteration=1, num_classes=4)
    first = torch.load(tmp_path / "model_0000.pth", weights_only=True)
    assert first["config"] == meta["config"] and first["num_classes"] == 3 and first["iteration"] == 0
    final = torch.load(tmp_path / "model_final.pth", weights_only=True)
    assert final["num_classes"] == 4 and final["note"][:4] == [1, 2.5, "x", None]  # save kwargs win
    reloaded = get_cfg()
    reloaded.merge_from_other_cfg(reloaded.load_cfg(final["config"]))
    assert reloaded.MODEL.HEADS.NUM_CLASSES == 3
    extra = Checkpointer(_Net()).load(str(tmp_path / "model_0000.pth"))
    assert extra["config"] == meta["config"] and extra["num_classes"] == 3


def test_metadata_that_would_not_load_is_refused_before_saving(tmp_path):
    with pytest.raises(TypeError, match="weights_only"):
        Checkpointer(_Net(), str(tmp_path), metadata={"config": get_cfg()})
    ckpt = Checkpointer(_Net(), str(tmp_path), save_to_disk=True, metadata={"num_classes": 3})
    ckpt.metadata["when"] = np.float64(1.0)
    with pytest.raises(TypeError, match=r"metadata\['when'\]"):
        ckpt.save("m")
    ckpt.metadata = {"rng": 1}
    with pytest.raises(ValueError, match="rng"):
        ckpt.save("m")
    assert not list(tmp_path.iterdir())


def _reid_cfg(num_classes, meta_arch="Baseline", head="EmbeddingHead"):
    cfg = get_cfg()
    cfg.merge_from_list([
        "MODEL.META_ARCHITECTURE", meta_arch, "MODEL.HEADS.NAME", head, "MODEL.HEADS.NUM_CLASSES", num_classes,
        "MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.PRETRAIN", False, "MODEL.BACKBONE.FEAT_DIM", 512,
        "MODEL.DEVICE", "cpu", "INPUT.SIZE_TEST", [64, 32],
    ])
    return cfg


def _trained_reid(tmp_path, cfg):
    """A model of ``cfg`` with non-trivial weights and BN statistics, saved as a trainer would; (model, path)."""
    torch.manual_seed(0)
    model = build_model(cfg)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    meta = {"config": cfg.dump(), "num_classes": cfg.MODEL.HEADS.NUM_CLASSES}
    Checkpointer(model, str(tmp_path), save_to_disk=True, metadata=meta).save("model_final", iteration=9)
    return model.eval(), str(tmp_path / "model_final.pth")


@pytest.mark.parametrize("meta_arch", ["Baseline", "MGN"])
def test_inference_load_of_a_trained_model_is_silent_and_exact(tmp_path, caplog, meta_arch):
    trained, path = _trained_reid(tmp_path, _reid_cfg(8, meta_arch))
    torch.manual_seed(1)
    model = build_model(_reid_cfg(0, meta_arch)).eval()
    with caplog.at_level(logging.DEBUG):
        extra = load_inference_weights(model, path)
    assert _warnings(caplog) == []
    assert extra["num_classes"] == 8 and "NUM_CLASSES: 8" in extra["config"] and extra["iteration"] == 9
    debug = [r.getMessage() for r in caplog.records if "Training-only" in r.getMessage()]
    assert len(debug) == 1 and "classifier.weight" in debug[0]
    images = torch.rand(2, 3, 64, 32) * 255
    with torch.no_grad():
        assert torch.equal(model(images), trained(images))

    # The same file through a plain load still reports the classifier, once, as one INFO line (issue 11).
    caplog.clear()
    with caplog.at_level(logging.INFO):
        Checkpointer(model).load(path)
    assert _warnings(caplog) == [] and "missing key" not in caplog.text
    lines = [r.getMessage() for r in caplog.records if "Classifier not loaded" in r.getMessage()]
    assert len(lines) == 1 and "classifier.weight" in lines[0]


def test_inference_load_keeps_a_classifier_that_fits(tmp_path, caplog):
    trained, path = _trained_reid(tmp_path, _reid_cfg(8, head="ClasHead"))
    model = build_model(_reid_cfg(8, head="ClasHead")).eval()
    with caplog.at_level(logging.DEBUG):
        load_inference_weights(model, path)
    assert _warnings(caplog) == [] and "Training-only" not in caplog.text
    images = torch.rand(2, 3, 64, 32) * 255
    with torch.no_grad():
        logits = model(images)
        assert logits.shape == (2, 8) and torch.equal(logits, trained(images))


def test_inference_load_of_a_data_parallel_save_and_of_other_architectures(tmp_path, caplog):
    trained, path = _trained_reid(tmp_path, _reid_cfg(8))
    state = torch.load(path, weights_only=True)["model"]
    torch.save({"model": {"module." + k: v for k, v in state.items()}}, tmp_path / "ddp.pth")
    model = build_model(_reid_cfg(0)).eval()
    with caplog.at_level(logging.WARNING):
        load_inference_weights(model, str(tmp_path / "ddp.pth"))
    assert _warnings(caplog) == []
    assert torch.equal(model.heads.bottleneck[0].running_var, trained.heads.bottleneck[0].running_var)

    # Another architecture's tensors are refused (issue 11); asked for, they are reported, and the classifier
    # still is not.
    other = build_model(_reid_cfg(0, "MGN"))
    with pytest.raises(ValueError, match="MODEL.WEIGHTS_PARTIAL"):
        load_inference_weights(other, path)
    with caplog.at_level(logging.WARNING):
        load_inference_weights(other, path, partial=True)
    assert _warnings(caplog) and "missing key" in caplog.text and "unexpected key" in caplog.text
    assert not any("classifier" in record.getMessage() for record in _warnings(caplog))
    assert INFERENCE_SKIP_PREFIXES == ("heads.classifier", "heads.*.classifier")
