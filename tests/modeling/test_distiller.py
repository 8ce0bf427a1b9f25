"""Distiller: distillation losses against their formulas, frozen eval-mode teachers, the EMA teacher, teacher
files named by KD.MODEL_CONFIG / KD.MODEL_WEIGHTS (strings or fast-reid's lists) and checkpoints."""
import math

import pytest
import torch
from torch import nn

from fastreid.config import get_cfg
from fastreid.modeling import BACKBONE_REGISTRY, build_model
from fastreid.modeling.losses.distillation import (LogitDistillationLoss, js_divergence, kl_divergence,
                                                   symmetric_kl_divergence)
from fastreid.modeling.meta_arch.distiller import Distiller, parse_path_list, teacher_logits
from fastreid.utils.checkpoint import Checkpointer
from fastreid.utils.events import EventStorage

NUM_CLASSES = 3


@pytest.fixture(scope="module", autouse=True)
def tiny_backbone():
    @BACKBONE_REGISTRY.register()
    def build_tiny_distill_backbone(cfg):
        width = cfg.MODEL.BACKBONE.FEAT_DIM
        net = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1), nn.BatchNorm2d(width), nn.ReLU())
        net.out_channels = width
        return net

    yield
    BACKBONE_REGISTRY._obj_map.pop("build_tiny_distill_backbone")


def _cfg(width=8, arch="Distiller", **kd):
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.META_ARCHITECTURE = arch
    cfg.MODEL.BACKBONE.NAME = "build_tiny_distill_backbone"
    cfg.MODEL.BACKBONE.FEAT_DIM = width
    cfg.MODEL.BACKBONE.PRETRAIN = False
    cfg.MODEL.HEADS.NUM_CLASSES = NUM_CLASSES
    cfg.MODEL.LOSSES.NAME = ("CrossEntropyLoss",)
    for key, value in kd.items():
        cfg.merge_from_list([f"KD.{key}", value])
    return cfg


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"images": torch.rand(6, 3, 16, 8, generator=g) * 255, "targets": torch.tensor([0, 0, 1, 1, 2, 2])}


def _saved_teacher(tmp_path, name="teacher", width=16, seed=1):
    """A trained-looking teacher: random weights and BN statistics, saved as a training run saves them."""
    torch.manual_seed(seed)
    cfg = _cfg(width=width, arch="Baseline")
    teacher = build_model(cfg)
    with torch.no_grad():
        teacher(_batch(seed))  # training-mode forward: non-default BN statistics
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.yaml").write_text(cfg.dump())
    Checkpointer(teacher, str(folder), save_rng=False).save("model_final", tag_last=False)
    return str(folder / "config.yaml"), str(folder / "model_final.pth"), teacher.eval()


def _distiller(tmp_path, **kd):
    config, weights, teacher = _saved_teacher(tmp_path)
    model = build_model(_cfg(MODEL_CONFIG=config, MODEL_WEIGHTS=weights, **kd))
    assert isinstance(model, Distiller)
    return model, teacher


def _softmax(row, t):
    exps = [math.exp(x / t) for x in row]
    return [e / sum(exps) for e in exps]


def _kl_by_hand(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


LOGITS_S = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
LOGITS_T = [[2.0, 0.0, 1.0], [1.0, 1.0, -2.0]]


@pytest.mark.parametrize("t", [1.0, 4.0])
def test_divergences_against_their_formulas(t):
    s, te = torch.tensor(LOGITS_S), torch.tensor(LOGITS_T)
    kl, sym, js = [], [], []
    for rs, rt in zip(LOGITS_S, LOGITS_T):
        ps, pt = _softmax(rs, t), _softmax(rt, t)
        m = [(a + b) / 2 for a, b in zip(ps, pt)]
        kl.append(_kl_by_hand(pt, ps))
        sym.append((_kl_by_hand(pt, ps) + _kl_by_hand(ps, pt)) / 2)
        js.append((_kl_by_hand(pt, m) + _kl_by_hand(ps, m)) / 2)
    assert kl_divergence(s, te, t).item() == pytest.approx(t * t * sum(kl) / 2, rel=1e-5)
    assert symmetric_kl_divergence(s, te, t).item() == pytest.approx(t * t * sum(sym) / 2, rel=1e-5)
    assert js_divergence(s, te, t).item() == pytest.approx(t * t * sum(js) / 2, rel=1e-5)
    # JS is bounded by log 2 per sample (before the T² factor); identical distributions give 0.
    assert js_divergence(s, te, t).item() <= t * t * math.log(2)
    assert kl_divergence(s, s, t).item() == pytest.approx(0.0, abs=1e-6)


def test_distillation_loss_averages_teachers_and_applies_its_scale():
    s, t1, t2 = torch.tensor(LOGITS_S), torch.tensor(LOGITS_T), torch.zeros(2, 3)
    loss = LogitDistillationLoss("kl", temperature=2.0, scale=0.5)(s, [t1, t2])
    expected = 0.5 * (kl_divergence(s, t1, 2.0) + kl_divergence(s, t2, 2.0)) / 2
    assert set(loss) == {"loss_kd"} and loss["loss_kd"].item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="KD.LOSS"):
        LogitDistillationLoss("mse")


def test_teacher_is_loaded_frozen_outside_the_module_tree_and_stays_in_eval_mode(tmp_path):
    model, saved = _distiller(tmp_path)
    (teacher,) = model.teachers
    for a, b in zip(teacher.state_dict().values(), saved.state_dict().values()):
        assert torch.equal(a, b)
    model.train()
    assert model.training and model.backbone.training
    assert not teacher.training and not any(m.training for m in teacher.modules())
    assert not any(p.requires_grad for p in teacher.parameters())
    teacher_params = {id(p) for p in teacher.parameters()}
    assert not teacher_params & {id(p) for p in model.parameters()}
    assert not any(k.startswith("teacher") for k in model.state_dict())
    # The logits are the teacher's own eval-mode logits (its BN running statistics, its classifier).
    batch = _batch()
    with torch.no_grad():
        embedding = saved(batch["images"])
        assert torch.allclose(teacher_logits(teacher, batch), saved.heads.classifier(embedding)[1])


def test_training_step_changes_the_student_not_the_teacher(tmp_path):
    model, _ = _distiller(tmp_path, LOSS="js", TEMPERATURE="4.0")
    (teacher,) = model.teachers
    batch = _batch(3)
    before_teacher = teacher_logits(teacher, batch)
    teacher_state = {k: v.clone() for k, v in teacher.state_dict().items()}
    student_weight = model.backbone[0].weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    with EventStorage():
        losses = model(batch)
    assert set(losses) == {"loss_cls", "loss_kd"}
    student = model.heads(model.backbone_features(batch), batch["targets"])["pred_class_logits"]
    assert losses["loss_kd"].item() == pytest.approx(js_divergence(student, before_teacher, 4.0).item(), rel=1e-5)
    sum(losses.values()).backward()
    optimizer.step()
    assert not torch.equal(model.backbone[0].weight, student_weight)
    assert torch.equal(teacher_logits(teacher, batch), before_teacher)
    assert all(torch.equal(v, teacher_state[k]) for k, v in teacher.state_dict().items())


def test_ema_update_follows_its_formula_and_is_checkpointed(tmp_path):
    torch.manual_seed(0)
    model = build_model(_cfg(**{"EMA.ENABLED": "True", "EMA.MOMENTUM": "0.9"}))
    assert model.teachers == [model.ema_teacher] and not model.ema_teacher.training
    with torch.no_grad():
        for p in model.ema_teacher.parameters():
            p.add_(torch.randn_like(p))
    ema_before = {k: v.clone() for k, v in model.ema_teacher.state_dict().items()}
    student = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("ema_teacher.")}
    model.train()
    assert not model.ema_teacher.training
    with EventStorage():
        model(_batch())
    for key, value in model.ema_teacher.state_dict().items():
        if value.dtype.is_floating_point:  # parameters and BN statistics (the student's before this forward)
            assert torch.allclose(value, 0.9 * ema_before[key] + 0.1 * student[key], atol=1e-6), key
        else:
            assert torch.equal(value, student[key]), key
    after_step = {k: v.clone() for k, v in model.ema_teacher.state_dict().items()}
    with torch.no_grad():  # forwards without gradients (precise-BN passes) leave it alone
        model(_batch())
    assert all(torch.equal(v, after_step[k]) for k, v in model.ema_teacher.state_dict().items())

    restored = build_model(_cfg(**{"EMA.ENABLED": "True", "EMA.MOMENTUM": "0.9"}))
    restored.load_state_dict(model.state_dict())
    for key, value in restored.ema_teacher.state_dict().items():
        assert torch.equal(value, after_step[key]), key


def test_ema_teacher_starts_as_the_student_of_a_checkpoint_without_one():
    baseline = build_model(_cfg(arch="Baseline"))
    model = build_model(_cfg(**{"EMA.ENABLED": "True"}))
    result = model.load_state_dict(baseline.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for key, value in baseline.state_dict().items():
        assert torch.equal(model.ema_teacher.state_dict()[key], value), key


def test_missing_teacher_files_are_errors_naming_the_key_and_the_path(tmp_path):
    config, weights, _ = _saved_teacher(tmp_path)
    missing = str(tmp_path / "nowhere" / "config.yaml")
    with pytest.raises(FileNotFoundError, match=r"KD.MODEL_CONFIG names .*nowhere/config.yaml"):
        build_model(_cfg(MODEL_CONFIG=missing, MODEL_WEIGHTS=weights))
    missing = str(tmp_path / "nowhere" / "model_final.pth")
    with pytest.raises(FileNotFoundError, match=r"KD.MODEL_WEIGHTS names .*nowhere/model_final.pth"):
        build_model(_cfg(MODEL_CONFIG=config, MODEL_WEIGHTS=missing))
    with pytest.raises(ValueError, match="no teacher"):
        build_model(_cfg())
    with pytest.raises(ValueError, match="one weight file per config"):
        build_model(_cfg(MODEL_CONFIG=f"('{config}', '{config}')", MODEL_WEIGHTS=weights))


def test_teacher_of_another_class_count_is_an_error(tmp_path):
    config, weights, _ = _saved_teacher(tmp_path)
    cfg = _cfg(MODEL_CONFIG=config, MODEL_WEIGHTS=weights)
    cfg.MODEL.HEADS.NUM_CLASSES = NUM_CLASSES + 1
    with pytest.raises(ValueError, match="classifier of the teacher"):
        build_model(cfg)


def test_fast_reid_config_with_lists_of_teachers_loads(tmp_path):
    first = _saved_teacher(tmp_path, "first", seed=1)
    second = _saved_teacher(tmp_path, "second", width=12, seed=2)
    student = tmp_path / "kd.yml"
    student.write_text(
        "MODEL:\n  META_ARCHITECTURE: Distiller\n"
        f"KD:\n  MODEL_CONFIG: ['{first[0]}', '{second[0]}']\n  MODEL_WEIGHTS:\n"
        f"    - {first[1]}\n    - {second[1]}\n  EMA:\n    ENABLED: True\n"
    )
    cfg = _cfg()
    cfg.merge_from_file(str(student))
    assert parse_path_list(cfg.KD.MODEL_CONFIG, "KD.MODEL_CONFIG") == [first[0], second[0]]
    model = build_model(cfg)
    assert len(model.teachers) == 3 and model.teachers[2] is model.ema_teacher
    batch = _batch()
    for teacher, (_, _, saved) in zip(model.teachers, (first, second)):
        assert torch.allclose(teacher_logits(teacher, batch), teacher_logits(saved, batch))
    # fast-reid's command-line form and a dumped config give the same value.
    cfg.merge_from_list(["KD.MODEL_CONFIG", f'("{first[0]}",)'])
    assert parse_path_list(cfg.KD.MODEL_CONFIG, "KD.MODEL_CONFIG") == [first[0]]
    reloaded = get_cfg()
    reloaded.merge_from_other_cfg(cfg)
    assert parse_path_list(reloaded.KD.MODEL_WEIGHTS, "KD.MODEL_WEIGHTS") == [first[1], second[1]]
    with pytest.raises(ValueError, match="list of quoted paths"):
        parse_path_list("[a.yml]", "KD.MODEL_CONFIG")


def test_inference_build_needs_no_teacher_files(tmp_path):
    cfg = _cfg(MODEL_CONFIG=str(tmp_path / "absent.yml"), MODEL_WEIGHTS=str(tmp_path / "absent.pth"))
    cfg.MODEL.HEADS.NUM_CLASSES = 0
    model = build_model(cfg).eval()
    assert model.teachers == []
    assert model(_batch()["images"]).shape == (6, 8)
