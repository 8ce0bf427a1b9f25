"""Run the tiny training of trainer_utils in a fresh process (used by the resume test).

    python run_tiny_training.py DATA_ROOT OUTPUT_DIR [--resume] [--kill-after-iter N]

``--kill-after-iter N`` sends SIGKILL to this process right after iteration N (after its checkpoint).
"""
import argparse
import os
import signal
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from trainer_utils import RESUME_OVERRIDES, tiny_overrides  # noqa: E402

from fastreid.engine import DefaultTrainer, default_argument_parser, default_setup, setup_cfg  # noqa: E402
from fastreid.engine.hooks import CallbackHook  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data_root")
    parser.add_argument("output_dir")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--kill-after-iter", type=int, default=-1)
    ns = parser.parse_args()
    torch.set_num_threads(1)
    opts = tiny_overrides(ns.data_root, ns.output_dir) + RESUME_OVERRIDES
    args = default_argument_parser().parse_args((["--resume"] if ns.resume else []) + opts)
    cfg = setup_cfg(args)
    default_setup(cfg, args)
    trainer = DefaultTrainer(cfg)
    assert trainer.iters_per_epoch == 3, trainer.iters_per_epoch
    if ns.kill_after_iter >= 0:
        def kill(t):
            if t.iter == ns.kill_after_iter:
                os.kill(os.getpid(), signal.SIGKILL)
        trainer.register_hooks([CallbackHook(after_step=kill)])
    trainer.resume_or_load(resume=args.resume)
    trainer.train()


if __name__ == "__main__":
    main()
