#!/usr/bin/env python
"""Train the ToyProject model: fastreid's DefaultTrainer plus the project's components and hook.

    python projects/ToyProject/train_net.py --config-file projects/ToyProject/configs/tiny_convnet_synthetic.yml
    python projects/ToyProject/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS path/to/model.pth
"""
import logging
from typing import List

from fastreid.config import get_cfg
from fastreid.engine import DefaultTrainer, HookBase, default_argument_parser, default_setup, launch, setup_cfg
from fastreid.engine.hooks import PeriodicWriter

from toy_project import WeightNormHook, add_toy_config

logger = logging.getLogger("fastreid.toy_project.train_net")


class Trainer(DefaultTrainer):
    """DefaultTrainer with the project's :class:`WeightNormHook`, measured at the log period."""

    def build_hooks(self) -> List[HookBase]:
        hooks = super().build_hooks()
        # Before the writer (main process only), so each measurement is written in the step it is taken.
        writer = next((i for i, h in enumerate(hooks) if isinstance(h, PeriodicWriter)), len(hooks))
        hooks.insert(writer, WeightNormHook(self.cfg.SOLVER.LOG_PERIOD))
        return hooks


def setup(args):
    """Defaults, then the project's keys, then the config file and command-line overrides."""
    cfg = get_cfg()
    add_toy_config(cfg)
    cfg = setup_cfg(args, cfg)
    default_setup(cfg, args)
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        return Trainer.test_weights(cfg)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
