#!/usr/bin/env python
"""Train a Baseline on holistic SyntheticPerson images and evaluate partial queries with DSR.

    python projects/PartialReID/train_net.py --config-file projects/PartialReID/configs/dsr_R18_synthetic.yml
    python projects/PartialReID/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS path/to/model.pth
"""
from typing import Optional

from fastreid.config import get_cfg
from fastreid.engine import DefaultTrainer, default_argument_parser, default_setup, launch_from_args, setup_cfg

from partialreid import DSREvaluator, add_partialreid_config


class Trainer(DefaultTrainer):
    """DefaultTrainer evaluating every test set with :class:`DSREvaluator`."""

    @classmethod
    def build_evaluator(cls, cfg, dataset_name: str, num_query: int, output_dir: Optional[str] = None):
        return DSREvaluator(cfg, num_query, output_dir)


def setup(args):
    """Defaults, then the project's keys, then the config file and command-line overrides."""
    cfg = get_cfg()
    add_partialreid_config(cfg)
    cfg = setup_cfg(args, cfg)
    default_setup(cfg, args)
    return cfg


def main(args):
    return Trainer.run(setup(args), eval_only=args.eval_only, resume=args.resume)


if __name__ == "__main__":
    launch_from_args(main, default_argument_parser().parse_args())
