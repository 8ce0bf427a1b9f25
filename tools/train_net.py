#!/usr/bin/env python
"""Train and evaluate a re-id model from a config file.

    python tools/train_net.py --config-file configs/Market1501/bagtricks_R50.yml [--resume] [KEY VALUE ...]
    python tools/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS path/to/model.pth
    python tools/train_net.py --config-file CFG --num-gpus 2            # 2 processes (GPUs, or CPU with gloo)
"""
import logging

from fastreid.engine import DefaultTrainer, default_argument_parser, default_setup, launch_from_args, setup_cfg

logger = logging.getLogger("fastreid.train_net")


def main(args):
    cfg = setup_cfg(args)
    default_setup(cfg, args)
    return DefaultTrainer.run(cfg, eval_only=args.eval_only, resume=args.resume)


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    logger.info("Command line arguments: %s", args)
    launch_from_args(main, args)
