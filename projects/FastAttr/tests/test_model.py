"""FastAttr's registered model pieces: config keys, the weighted BCE against its formula, head and meta-arch."""
import math

import pytest
import torch

from fastreid.config import get_cfg
from fastreid.data.samplers import sampler_name
from fastreid.modeling import LOSS_REGISTRY, META_ARCH_REGISTRY, REID_HEADS_REGISTRY, build_model

from .conftest import PROJECT

CONFIG = str(PROJECT / "configs" / "synthetic_attr_R18.yml")


def test_importing_the_package_registers_its_components():
    import fast_attr

    assert META_ARCH_REGISTRY.get("AttrBaseline") is fast_attr.AttrBaseline
    assert REID_HEADS_REGISTRY.get("AttrHead") is fast_attr.AttrHead
    assert LOSS_REGISTRY.get("BinaryCrossEntropyLoss") is fast_attr.BinaryCrossEntropyLoss


def test_add_attr_config_adds_fast_reids_keys_which_the_project_yaml_needs():
    from fast_attr import add_attr_config

    with pytest.raises(Exception, match="BCE|THRES"):
        get_cfg().merge_from_file(CONFIG)
    cfg = get_cfg()
    before = set(cfg.full_keys())
    add_attr_config(cfg)
    assert set(cfg.full_keys()) - before == {"MODEL.LOSSES.BCE.WEIGHT_ENABLED", "MODEL.LOSSES.BCE.SCALE", "TEST.THRES"}
    cfg.merge_from_file(CONFIG)
    assert cfg.MODEL.META_ARCHITECTURE == "AttrBaseline" and cfg.DATASETS.NAMES == ("SyntheticPersonAttr",)


def test_weighted_bce_against_its_formula():
    from fast_attr import BinaryCrossEntropyLoss

    logits = torch.tensor([[2.0, -1.0, 0.5], [-0.3, 0.0, 1.5]])
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    ratios = [0.1, 0.5, 0.8]
    expected = 0.0
    for i in range(2):
        for j in range(3):
            p = 1 / (1 + math.exp(-logits[i, j].item()))
            y = labels[i, j].item()
            bce = -(y * math.log(p) + (1 - y) * math.log(1 - p))
            expected += bce * (math.exp(1 - ratios[j]) if y else math.exp(ratios[j])) / 6
    loss = BinaryCrossEntropyLoss(scale=2.0)
    with pytest.raises(RuntimeError, match="set_positive_ratios"):
        loss({"cls_outputs": logits}, labels)
    loss.set_positive_ratios(ratios)
    assert loss({"cls_outputs": logits}, labels)["loss_bce"].item() == pytest.approx(2 * expected, rel=1e-6)
    assert "positive_ratios" not in loss.state_dict()
    plain = BinaryCrossEntropyLoss(weight_enabled=False)({"cls_outputs": logits}, labels)["loss_bce"]
    assert plain.item() == pytest.approx(torch.nn.functional.binary_cross_entropy_with_logits(logits, labels).item())


def _cfg(num_attributes):
    from fast_attr import add_attr_config

    cfg = get_cfg()
    add_attr_config(cfg)
    cfg.merge_from_file(CONFIG)
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.HEADS.NUM_CLASSES", str(num_attributes)])
    return cfg


def test_model_gives_probabilities_in_eval_and_the_bce_term_in_training():
    model = build_model(_cfg(5))
    assert type(model.heads).__name__ == "AttrHead"
    model.set_positive_ratios([0.2] * 5)
    images = torch.rand(4, 3, 32, 16) * 255
    labels = (torch.rand(4, 5) > 0.5).float()
    losses = model({"images": images, "targets": labels})
    assert list(losses) == ["loss_bce"] and losses["loss_bce"].requires_grad
    with torch.no_grad():
        probs = model.eval()(images)
    assert probs.shape == (4, 5) and ((probs > 0) & (probs < 1)).all()


@pytest.mark.parametrize("name", sorted(p.name for p in (PROJECT / "configs").glob("*.yml")))
def test_every_project_config_loads(name):
    from fast_attr import add_attr_config

    cfg = get_cfg()
    add_attr_config(cfg)
    cfg.merge_from_file(str(PROJECT / "configs" / name))
    dl = cfg.DATALOADER
    assert cfg.MODEL.META_ARCHITECTURE == "AttrBaseline"
    assert sampler_name(dl.SAMPLER_TRAIN, dl.PK_SAMPLER, dl.NAIVE_WAY) == "TrainingSampler"
