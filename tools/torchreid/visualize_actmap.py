#!/usr/bin/env python
"""torchreid's activation-map command (its how-to), on fastreid.torchreid:

    python tools/torchreid/visualize_actmap.py --root DATA -d market1501 -m resnet50 --weights PATH \
        --save-dir log/visactmap_resnet50_market1501 [--height 256 --width 128]

Builds ``ImageDataManager(root, sources=dataset)`` and ``build_model(model)``, loads ``--weights`` with
``load_pretrained_weights`` (torchreid's or fastreid's files), and writes one image | activation map | overlay
JPEG per query image into ``SAVE_DIR/actmap_<dataset>/`` (see ``fastreid.torchreid.utils.visualize_actmap``).
"""
import argparse
import logging
import os
import sys
from typing import List, Optional, Sequence

import torch

import fastreid.torchreid as torchreid
from fastreid.utils.logger import setup_logger

logger = logging.getLogger("fastreid.torchreid.visualize_actmap")


def get_parser() -> argparse.ArgumentParser:
    """torchreid's arguments for the tool."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=str, default="", help="datasets root")
    parser.add_argument("-d", "--dataset", type=str, default="market1501", help="torchreid dataset key")
    parser.add_argument("-m", "--model", type=str, default="resnet50", help="torchreid model name")
    parser.add_argument("--weights", type=str, default="", help="weights file (torchreid's or fastreid's)")
    parser.add_argument("--save-dir", type=str, default="log", help="output folder")
    parser.add_argument("--height", type=int, default=256, help="image height")
    parser.add_argument("--width", type=int, default=128, help="image width")
    parser.add_argument("--batch-size", type=int, default=100, help="test batch size")
    parser.add_argument("--workers", type=int, default=4, help="loader worker processes")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> List[str]:
    args = get_parser().parse_args(argv)
    setup_logger(name="fastreid")
    use_gpu = torch.cuda.is_available()
    datamanager = torchreid.data.ImageDataManager(
        root=args.root, sources=args.dataset, height=args.height, width=args.width, batch_size_train=args.batch_size,
        batch_size_test=args.batch_size, transforms=None, train_sampler="SequentialSampler", workers=args.workers,
        use_gpu=use_gpu,
    )
    model = torchreid.models.build_model(args.model, num_classes=datamanager.num_train_pids,
                                         pretrained=not args.weights)
    if use_gpu:
        model = model.cuda()
    if args.weights:
        if not os.path.isfile(args.weights):
            raise FileNotFoundError(f"--weights {args.weights}: no such file")
        torchreid.utils.load_pretrained_weights(model, args.weights)
    else:
        logger.warning("No --weights given: the maps are those of a randomly initialised model")
    return torchreid.utils.visualize_actmap(model, datamanager.test_loader, args.save_dir, args.width, args.height,
                                            use_gpu)


if __name__ == "__main__":
    main(sys.argv[1:])
