#!/usr/bin/env python
"""Train the ToyProject model: fastreid's DefaultTrainer plus the project's components and hook.

    python projects/ToyProject/train_net.py --config-file projects/ToyProject/configs/tiny_convnet_synthetic.yml
    python projects/ToyProject/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS path/to/model.pth
"""
from typing import List

from fastreid.config import get_cfg
from fastreid.engine import (DefaultTrainer, HookBase, default_argument_parser, default_setup, launch_from_args,
                             setup_cfg)

from toy_project import WeightNormHook, add_toy_config


class Trainer(DefaultTrainer):
    """DefaultTrainer with the project's :class:`WeightNormHook`, measured at the log period."""

    def build_hooks(self) -> List[HookBase]:
        # The trainer appends its writer after these, so each measurement is written in the step it is taken.
        return super().build_hooks() + [WeightNormHook(self.cfg.SOLVER.LOG_PERIOD)]


def setup(args):
    """Defaults, then the project's keys, then the config file and command-line overrides."""
    cfg = get_cfg()
    add_toy_config(cfg)
    cfg = setup_cfg(args, cfg)
    default_setup(cfg, args)
    return cfg


def main(args):
    return Trainer.run(setup(args), eval_only=args.eval_only, resume=args.resume)


if __name__ == "__main__":
    launch_from_args(main, default_argument_parser().parse_args())
