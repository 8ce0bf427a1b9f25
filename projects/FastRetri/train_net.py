#!/usr/bin/env python
"""Train a fine-grained retrieval model and evaluate Recall@K: fastreid's DefaultTrainer with FastRetri's pieces.

    python projects/FastRetri/train_net.py --config-file projects/FastRetri/configs/synthetic_R18.yml
    python projects/FastRetri/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS path/to/model_final.pth
"""
from fastreid.config import get_cfg
from fastreid.engine import default_argument_parser, default_setup, launch_from_args, setup_cfg
from fastreid.utils import comm
from fastreid.utils.logger import setup_logger

from fast_retri import RetriTrainer, add_retri_config


def setup(args):
    """Defaults, then the project's key, then the config file and command-line overrides."""
    cfg = get_cfg()
    add_retri_config(cfg)
    cfg = setup_cfg(args, cfg)
    default_setup(cfg, args)
    setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="fast_retri")  # the project's own logs
    return cfg


def main(args):
    return RetriTrainer.run(setup(args), eval_only=args.eval_only, resume=args.resume)


if __name__ == "__main__":
    launch_from_args(main, default_argument_parser().parse_args())
