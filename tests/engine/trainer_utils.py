"""A tiny training configuration on the SyntheticPerson dataset, shared by the engine tests and scripts."""
import json
from pathlib import Path
from typing import List, Optional, Sequence

import pytest
import torch

from fastreid.config import CfgNode, get_cfg
from fastreid.engine import DefaultTrainer, default_argument_parser, default_setup
from fastreid.engine.hooks import CallbackHook


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


# Per-sample losses and batch-independent norms make the 2-process gradient (DDP's mean of two per-rank means)
# equal the 1-process one; augmentations are off because each process draws its own.
DETERMINISTIC = [
    "MODEL.LOSSES.NAME", "('CrossEntropyLoss',)",
    "MODEL.BACKBONE.NORM", "FrozenBN",
    "MODEL.HEADS.NORM", "FrozenBN",
    "DATALOADER.PK_SAMPLER", "False",
    "INPUT.DO_FLIP", "False",
    "INPUT.DO_PAD", "False",
    "INPUT.REA.ENABLED", "False",
    "SOLVER.MAX_EPOCH", "1",
    "TEST.EVAL_PERIOD", "1",
    # bf16 rounding differs between one batch of 2N and two of N; fp32 keeps the comparison at 1e-4
    "MODEL.PRECISION", "fp32",
]


def final_eval(output_dir: Path) -> dict:
    """The last SyntheticPerson evaluation record of ``output_dir/metrics.json``."""
    lines = [json.loads(line) for line in (output_dir / "metrics.json").read_text().splitlines()]
    return [line for line in lines if "SyntheticPerson/mAP" in line][-1]


def assert_same_training(expected_dir: Path, actual_dir: Path) -> None:
    """The final weights and metrics of two ``DETERMINISTIC`` runs agree (to float rounding)."""
    a = torch.load(expected_dir / "model_final.pth", weights_only=True)["model"]
    b = torch.load(actual_dir / "model_final.pth", weights_only=True)["model"]
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    eval_a, eval_b = final_eval(expected_dir), final_eval(actual_dir)
    # Weights equal to float rounding (above) can still swap a near-tie in a ranking of this tiny test set, which
    # moves mAP by a few hundredths of a percent: the metrics are compared to a tenth of a percent.
    for key in ("SyntheticPerson/Rank-1", "SyntheticPerson/mAP", "SyntheticPerson/mINP"):
        assert eval_a[key] == pytest.approx(eval_b[key], abs=0.1), key


# Exact-resume runs: 2 epochs of 3 iterations, a checkpoint every 2 iterations, random colour jitter on top.
RESUME_OVERRIDES = [
    "SOLVER.MAX_EPOCH", "2", "SOLVER.CHECKPOINT_PERIOD_ITERS", "2", "SOLVER.CHECKPOINT_PERIOD", "0",
    "TEST.EVAL_PERIOD", "0", "DETERMINISTIC", "True", "INPUT.CJ.ENABLED", "True", "INPUT.CJ.PROB", "0.5",
]


def tiny_cfg(data_root: str, output_dir: str, extra: Sequence[str] = ()) -> CfgNode:
    cfg = get_cfg()
    cfg.merge_from_list(tiny_overrides(data_root, output_dir) + list(extra))
    return cfg


class Interrupt(Exception):
    """Raised by a hook to stop a run in the middle, as a crash would."""


def train_interrupted(cfg: CfgNode, *, resume: bool = False, stop_after_iter: Optional[int] = None) -> DefaultTrainer:
    """Set up (seeding from cfg.SEED) and train ``cfg`` with DefaultTrainer, resuming from OUTPUT_DIR when
    ``resume``; with ``stop_after_iter`` the run stops right after that iteration (and its checkpoint)."""
    default_setup(cfg, default_argument_parser().parse_args([]))
    trainer = DefaultTrainer(cfg)
    if stop_after_iter is not None:
        def interrupt(t):
            if t.iter == stop_after_iter:
                raise Interrupt
        trainer.register_hooks([CallbackHook(after_step=interrupt)])
    trainer.resume_or_load(resume=resume)
    try:
        trainer.train()
    except Interrupt:
        pass
    return trainer
