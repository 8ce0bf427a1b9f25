#!/usr/bin/env python
"""Train and evaluate the project; the same flags as tools/train_net.py.

    python projects/template/train_net.py --config-file projects/template/configs/template_synthetic.yml
    python projects/template/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS path/to/model.pth
    python projects/template/train_net.py --config-file CFG --resume          # continue in OUTPUT_DIR

CHANGE: the package name, and the Trainer methods you need to override.
"""
from typing import List

from fastreid.config import get_cfg
from fastreid.engine import (DefaultTrainer, HookBase, default_argument_parser, default_setup, launch_from_args,
                             setup_cfg)

# Importing the package registers the dataset, backbone and loss, so the config can name them.
from template_project import ElapsedTimeHook, add_template_config


class Trainer(DefaultTrainer):
    """DefaultTrainer plus the project's hook.

    Override any other ``build_*`` classmethod here to change one piece (``build_model``, ``build_optimizer``,
    ``build_train_loader``, ``build_test_loader``, ``build_evaluator``, ...); each one's docstring says what it
    must return.
    """

    def build_hooks(self) -> List[HookBase]:
        # Added after the built-in hooks; the trainer appends its writer last, so what they store is written.
        return super().build_hooks() + [ElapsedTimeHook(self.cfg.SOLVER.LOG_PERIOD)]


def setup(args):
    """Defaults, then the project's keys, then the config file and command-line overrides."""
    cfg = get_cfg()
    add_template_config(cfg)  # before any YAML is merged, so the project's YAML may set its keys
    cfg = setup_cfg(args, cfg)
    default_setup(cfg, args)
    return cfg


def main(args):
    return Trainer.run(setup(args), eval_only=args.eval_only, resume=args.resume)


if __name__ == "__main__":
    launch_from_args(main, default_argument_parser().parse_args())
