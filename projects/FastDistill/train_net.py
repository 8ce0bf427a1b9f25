#!/usr/bin/env python
"""Train a FastDistill teacher, a student alone, or a student distilled from a trained teacher.

    python projects/FastDistill/train_net.py --config-file projects/FastDistill/configs/r34_teacher.yml
    python projects/FastDistill/train_net.py --config-file projects/FastDistill/configs/kd_r34_r18.yml
    python projects/FastDistill/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS path/to/model.pth

Same flags as tools/train_net.py (--resume, --num-gpus, KEY VALUE overrides).
"""
from fastreid.engine import DefaultTrainer, default_argument_parser, default_setup, launch_from_args, setup_cfg

import fastdistill  # noqa: F401 - registers Distiller


def main(args):
    cfg = setup_cfg(args)
    default_setup(cfg, args)
    return DefaultTrainer.run(cfg, eval_only=args.eval_only, resume=args.resume)


if __name__ == "__main__":
    launch_from_args(main, default_argument_parser().parse_args())
