#!/usr/bin/env python
"""Deep mutual learning of two networks on fastreid's DefaultTrainer.

    python projects/DML/train_net.py --config-file projects/DML/configs/dml_R18_synthetic.yml
    python projects/DML/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS path/to/model.pth

The two networks live in one ``DML`` model, so the stock trainer gives both their optimizer parameters,
checkpoints them together and evaluates the features of MODEL.DML.DEPLOY.
"""
from fastreid.config import get_cfg
from fastreid.engine import DefaultTrainer, default_argument_parser, default_setup, launch_from_args, setup_cfg

from dml import add_dml_config


def setup(args):
    """Defaults, then the project's keys, then the config file and command-line overrides."""
    cfg = get_cfg()
    add_dml_config(cfg)
    cfg = setup_cfg(args, cfg)
    default_setup(cfg, args)
    return cfg


def main(args):
    return DefaultTrainer.run(setup(args), eval_only=args.eval_only, resume=args.resume)


if __name__ == "__main__":
    launch_from_args(main, default_argument_parser().parse_args())
