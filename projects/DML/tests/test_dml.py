"""DML: the mimicry loss against its formula, the two-network model, and a short training run."""
import importlib.util
import json

import numpy as np
import pytest
import torch

from fastreid.config import get_cfg
from fastreid.engine import DefaultTrainer, default_argument_parser
from fastreid.modeling import META_ARCH_REGISTRY, build_model

from .conftest import PROJECT

CONFIG = str(PROJECT / "tests" / "tiny_synthetic.yml")


def _tiny_opts(tmp_path):
    """Where the test run keeps its generated data and its output."""
    return ["DATASETS.ROOT", str(tmp_path / "data"), "OUTPUT_DIR", str(tmp_path / "out")]


def _project_cfg(tmp_path, *extra):
    from dml import add_dml_config

    cfg = get_cfg()
    add_dml_config(cfg)
    cfg.merge_from_file(CONFIG)
    cfg.merge_from_list(_tiny_opts(tmp_path) + ["MODEL.HEADS.NUM_CLASSES", "4", *extra])
    return cfg


def _batch():
    return {"images": torch.rand(4, 3, 64, 32) * 255, "targets": torch.tensor([0, 0, 1, 1])}


def test_importing_the_package_registers_the_meta_architecture():
    import dml

    assert META_ARCH_REGISTRY.get("DML") is dml.DML


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_mutual_loss_is_the_tempered_kl_divergence_to_the_peer(temperature):
    from dml import mutual_kl_loss

    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], requires_grad=True)
    peer = torch.tensor([[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]], requires_grad=True)

    def softmax(z):
        e = np.exp(z / temperature - (z / temperature).max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p, q = softmax(peer.detach().numpy()), softmax(logits.detach().numpy())
    expected = temperature ** 2 * np.mean(np.sum(p * np.log(p / q), axis=1))
    loss = mutual_kl_loss(logits, peer, temperature)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert peer.grad is None and logits.grad.abs().sum() > 0  # the peer is a fixed target
    assert mutual_kl_loss(peer, peer, temperature).item() == pytest.approx(0.0, abs=1e-7)


def test_each_network_gets_its_own_losses_and_the_optimizer_holds_both(tmp_path):
    model = build_model(_project_cfg(tmp_path)).train()
    terms = model(_batch())
    assert set(terms) == {f"loss_{t}_{n}" for t in ("cls", "triplet", "mutual") for n in ("net1", "net2")}
    sum(v for k, v in terms.items() if k.endswith("_net1")).backward()
    assert all(p.grad is None for p in model.net2.parameters())  # net1's objective does not move net2
    optimizer = DefaultTrainer.build_optimizer(_project_cfg(tmp_path), model)
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert {id(p) for p in model.parameters() if p.requires_grad} <= in_optimizer


def test_deploy_selects_or_concatenates_the_features(tmp_path):
    model = build_model(_project_cfg(tmp_path, "MODEL.DML.DEPLOY", "both")).eval()
    images = torch.rand(2, 3, 64, 32) * 255
    with torch.no_grad():
        f1, f2, both = model.net1(images), model.net2(images), model(images)
        model.deploy = "net2"
        torch.testing.assert_close(model(images), f2)
    expected = torch.cat([torch.nn.functional.normalize(f, dim=1) for f in (f1, f2)], dim=1)
    torch.testing.assert_close(both, expected)
    with pytest.raises(ValueError, match="MODEL.DML.DEPLOY"):
        build_model(_project_cfg(tmp_path, "MODEL.DML.DEPLOY", "net3"))


def test_the_second_network_may_have_another_backbone(tmp_path):
    net2 = '["MODEL.BACKBONE.NAME", "build_shufflenetv2_backbone", "MODEL.BACKBONE.DEPTH", "0.5x"]'
    model = build_model(_project_cfg(tmp_path, "MODEL.DML.NET2_OPTS", net2))
    assert type(model.net1.backbone).__name__ == "OSNet" and type(model.net2.backbone).__name__ != "OSNet"
    model.train()(_batch())  # both heads classify the same identities


def test_train_net_trains_both_networks_and_evaluates(tmp_path):
    spec = importlib.util.spec_from_file_location("dml_train_net", PROJECT / "train_net.py")
    train_net = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_net)
    args = default_argument_parser().parse_args(["--config-file", CONFIG, *_tiny_opts(tmp_path)])
    results = train_net.main(args)
    assert 0 < results["SyntheticPerson"]["mAP"] <= 100
    lines = [json.loads(line) for line in (tmp_path / "out" / "metrics.json").read_text().splitlines()]
    trained = [line for line in lines if "loss_mutual_net1" in line]
    assert len(trained) == 2  # 16 training images / 8 per batch
    assert all(line["loss_mutual_net2"] >= 0 and "loss_cls_net2" in line for line in trained)
    state = torch.load(tmp_path / "out" / "model_final.pth", map_location="cpu", weights_only=False)["model"]
    assert any(k.startswith("net2.backbone.") for k in state)
