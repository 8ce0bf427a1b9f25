"""A tiny training configuration on the SyntheticPerson dataset, shared by the engine tests and scripts."""
from typing import List, Sequence

from fastreid.config import CfgNode, get_cfg


def tiny_overrides(data_root: str, output_dir: str) -> List[str]:
    """``KEY VALUE`` overrides for a ResNet-18 run of a few iterations on 32x16 synthetic crops."""
    return [
        "MODEL.DEVICE", "cpu",
        "MODEL.BACKBONE.DEPTH", "18x",
        "MODEL.BACKBONE.FEAT_DIM", "512",
        "MODEL.BACKBONE.PRETRAIN", "False",
        "MODEL.LOSSES.NAME", "('CrossEntropyLoss', 'TripletLoss')",
        "INPUT.SIZE_TRAIN", "[32, 16]",
        "INPUT.SIZE_TEST", "[32, 16]",
        "INPUT.PADDING", "2",
        "INPUT.REA.ENABLED", "True",
        "DATASETS.NAMES", "('SyntheticPerson',)",
        "DATASETS.TESTS", "('SyntheticPerson',)",
        "DATASETS.ROOT", data_root,
        "DATASETS.SYNTHETIC.NUM_IDS", "12",
        "DATASETS.SYNTHETIC.NUM_CAMERAS", "3",
        "DATASETS.SYNTHETIC.IMAGES_PER_ID", "6",
        "DATASETS.SYNTHETIC.HEIGHT", "32",
        "DATASETS.SYNTHETIC.WIDTH", "16",
        "DATALOADER.NUM_WORKERS", "0",
        "DATALOADER.NUM_INSTANCE", "2",
        "SOLVER.IMS_PER_BATCH", "8",
        "SOLVER.MAX_EPOCH", "2",
        "SOLVER.WARMUP_ITERS", "2",
        "SOLVER.STEPS", "[1]",
        "SOLVER.BASE_LR", "0.001",
        "SOLVER.CHECKPOINT_PERIOD", "1",
        "SOLVER.LOG_PERIOD", "2",
        "TEST.EVAL_PERIOD", "1",
        "TEST.IMS_PER_BATCH", "16",
        "SEED", "7",
        "OUTPUT_DIR", output_dir,
    ]


# Exact-resume runs: 2 epochs of 3 iterations, a checkpoint every 2 iterations, random colour jitter on top.
RESUME_OVERRIDES = [
    "SOLVER.MAX_EPOCH", "2", "SOLVER.CHECKPOINT_PERIOD_ITERS", "2", "SOLVER.CHECKPOINT_PERIOD", "0",
    "TEST.EVAL_PERIOD", "0", "DETERMINISTIC", "True", "INPUT.CJ.ENABLED", "True", "INPUT.CJ.PROB", "0.5",
]


def tiny_cfg(data_root: str, output_dir: str, extra: Sequence[str] = ()) -> CfgNode:
    cfg = get_cfg()
    cfg.merge_from_list(tiny_overrides(data_root, output_dir) + list(extra))
    return cfg
