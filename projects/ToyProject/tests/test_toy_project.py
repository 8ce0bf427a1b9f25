"""ToyProject: registration into the core registries, its config key, and a short training run."""
import importlib.util
import json

import pytest
import torch

from fastreid.config import get_cfg
from fastreid.engine import default_argument_parser
from fastreid.modeling import BACKBONE_REGISTRY, LOSS_REGISTRY, build_model

from .conftest import PROJECT

CONFIG = str(PROJECT / "configs" / "tiny_convnet_synthetic.yml")


def _tiny_opts(tmp_path):
    return [
        "MODEL.DEVICE", "cpu",
        "DATASETS.ROOT", str(tmp_path / "data"),
        "DATASETS.SYNTHETIC.NUM_IDS", "8",
        "DATASETS.SYNTHETIC.IMAGES_PER_ID", "4",
        "DATASETS.SYNTHETIC.HEIGHT", "32",
        "DATASETS.SYNTHETIC.WIDTH", "16",
        "INPUT.SIZE_TRAIN", "[32, 16]",
        "INPUT.SIZE_TEST", "[32, 16]",
        "INPUT.PADDING", "2",
        "SOLVER.IMS_PER_BATCH", "8",
        "DATALOADER.NUM_INSTANCE", "2",
        "DATALOADER.NUM_WORKERS", "0",
        "SOLVER.MAX_EPOCH", "1",
        "SOLVER.LOG_PERIOD", "1",
        "TEST.EVAL_PERIOD", "1",
        "TEST.IMS_PER_BATCH", "16",
        "SEED", "0",
        "OUTPUT_DIR", str(tmp_path / "out"),
    ]


def test_importing_the_package_registers_its_components():
    import toy_project

    assert BACKBONE_REGISTRY.get("build_tiny_convnet_backbone") is toy_project.build_tiny_convnet_backbone
    assert LOSS_REGISTRY.get("RingLoss") is toy_project.RingLoss


def test_add_toy_config_adds_one_key_which_the_project_yaml_needs():
    from toy_project import add_toy_config

    with pytest.raises(Exception, match="RING"):
        get_cfg().merge_from_file(CONFIG)
    cfg = get_cfg()
    before = set(cfg.full_keys())
    add_toy_config(cfg)
    assert set(cfg.full_keys()) - before == {"MODEL.LOSSES.RING.SCALE"}
    cfg.merge_from_file(CONFIG)
    assert cfg.MODEL.BACKBONE.NAME == "build_tiny_convnet_backbone"


def test_ring_loss_against_its_formula():
    from toy_project import RingLoss

    features = torch.tensor([[3.0, 4.0], [0.0, 2.0]])  # norms 5 and 2
    loss = RingLoss(scale=0.5, radius=3.0)({"features": features}, torch.tensor([0, 1]))
    assert loss["loss_ring"].item() == pytest.approx(0.5 * 0.5 * ((5 - 3) ** 2 + (2 - 3) ** 2) / 2)


def _project_cfg(tmp_path):
    from toy_project import add_toy_config

    cfg = get_cfg()
    add_toy_config(cfg)
    cfg.merge_from_file(CONFIG)
    cfg.merge_from_list(_tiny_opts(tmp_path))
    return cfg


def test_model_builds_from_the_project_config(tmp_path):
    model = build_model(_project_cfg(tmp_path)).eval()
    assert type(model.backbone).__name__ == "TinyConvNet"
    assert [type(loss).__name__ for loss in model.losses] == ["CrossEntropyLoss", "TripletLoss", "RingLoss"]
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 16) * 255).shape == (2, 64)


def test_train_net_trains_with_the_project_hook_and_loss(tmp_path):
    spec = importlib.util.spec_from_file_location("toy_train_net", PROJECT / "train_net.py")
    train_net = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_net)
    args = default_argument_parser().parse_args(["--config-file", CONFIG, *_tiny_opts(tmp_path)])
    results = train_net.main(args)
    assert "mAP" in results["SyntheticPerson"]
    lines = [json.loads(line) for line in (tmp_path / "out" / "metrics.json").read_text().splitlines()]
    trained = [line for line in lines if "loss_ring" in line]
    assert len(trained) == 2  # 16 training images (half the identities) / 8 per batch
    assert all(line["weight_norm"] > 0 for line in trained)
