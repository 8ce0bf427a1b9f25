import os

import numpy as np
import pytest
from PIL import Image

from fastreid.config import get_cfg


def write_images(folder, names, size=(16, 8), seed=0):
    """Write tiny random RGB images (``size`` = height, width) with the given file names into ``folder``."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name in names:
        path = os.path.join(folder, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def write_text(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


@pytest.fixture
def tiny_synthetic_cfg(tmp_path):
    """A config training and testing on an 8-id x 2-camera, 32x16 SyntheticPerson under tmp_path."""
    cfg = get_cfg()
    cfg.merge_from_list([
        "DATASETS.ROOT", str(tmp_path), "DATASETS.NAMES", ("SyntheticPerson",), "DATASETS.TESTS", ("SyntheticPerson",),
        "DATASETS.SYNTHETIC.NUM_IDS", 8, "DATASETS.SYNTHETIC.NUM_CAMERAS", 2, "DATASETS.SYNTHETIC.IMAGES_PER_ID", 4,
        "DATASETS.SYNTHETIC.HEIGHT", 32, "DATASETS.SYNTHETIC.WIDTH", 16,
        "INPUT.SIZE_TRAIN", [32, 16], "INPUT.SIZE_TEST", [32, 16], "INPUT.PADDING", 2,
        "SOLVER.IMS_PER_BATCH", 4, "DATALOADER.NUM_INSTANCE", 2, "DATALOADER.NUM_WORKERS", 0,
        "TEST.IMS_PER_BATCH", 5, "MODEL.DEVICE", "cpu",
    ])
    return cfg
