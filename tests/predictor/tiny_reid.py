"""A tiny re-id set-up shared by the predictor and tools tests: config, random-weight model, checkpoint."""
import os

import pytest
import torch

from fastreid.config import get_cfg
from fastreid.modeling import build_model
from fastreid.utils.checkpoint import Checkpointer

TINY_OPTS = [
    "DATASETS.NAMES", ("SyntheticPerson",), "DATASETS.TESTS", ("SyntheticPerson",),
    "DATASETS.SYNTHETIC.NUM_IDS", 8, "DATASETS.SYNTHETIC.NUM_CAMERAS", 2, "DATASETS.SYNTHETIC.IMAGES_PER_ID", 4,
    "DATASETS.SYNTHETIC.HEIGHT", 32, "DATASETS.SYNTHETIC.WIDTH", 16,
    "INPUT.SIZE_TRAIN", [32, 16], "INPUT.SIZE_TEST", [32, 16],
    "MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.PRETRAIN", False, "MODEL.HEADS.NUM_CLASSES", 8,
    "MODEL.DEVICE", "cpu", "DATALOADER.NUM_WORKERS", 0, "TEST.IMS_PER_BATCH", 5,
    # float32 on every CPU ("auto" may pick bf16): these tests compare features at float32 tolerances.
    "MODEL.PRECISION", "fp32",
]


def tiny_cfg(root):
    """A config on an 8-id × 2-camera, 32×16 SyntheticPerson under ``root`` with a ResNet-18 Baseline."""
    cfg = get_cfg()
    cfg.merge_from_list(TINY_OPTS + ["DATASETS.ROOT", str(root), "OUTPUT_DIR", os.path.join(str(root), "out")])
    return cfg


def tiny_model(cfg, seed=0):
    """The model of ``cfg`` with random weights and non-trivial BN statistics, in eval mode."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def save_setup(cfg, model, folder):
    """Writes ``config.yaml`` and ``model.pth`` into ``folder``; returns their paths."""
    os.makedirs(folder, exist_ok=True)
    Checkpointer(model, folder, save_to_disk=True, save_rng=False).save("model", tag_last=False)
    config_path = os.path.join(folder, "config.yaml")
    with open(config_path, "w") as f:
        f.write(cfg.dump())
    return config_path, os.path.join(folder, "model.pth")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and much faster than on two contended ones."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cfg(tmp_path):
    return tiny_cfg(tmp_path)


@pytest.fixture
def model(cfg):
    return tiny_model(cfg)


@pytest.fixture
def setup_files(cfg, model, tmp_path):
    """(config file, weights file) of ``model``."""
    return save_setup(cfg, model, str(tmp_path / "trained"))
