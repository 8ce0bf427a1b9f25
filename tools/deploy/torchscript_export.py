#!/usr/bin/env python
"""Export a trained fastreid model to TorchScript by tracing (0-255 images in, features out).

    python tools/deploy/torchscript_export.py --config-file configs/Market1501/bagtricks_R50.yml \
        --name baseline_R50 --output ts_model MODEL.WEIGHTS logs/market1501/bagtricks_R50/model_final.pth

writes ``ts_model/baseline_R50.pt`` for INPUT.SIZE_TEST; load it with ``torch.jit.load``.
"""
import argparse
import logging
import os
import sys
from typing import Optional, Sequence

import torch

from fastreid.export import build_export_model, check_agreement, export_cfg, export_torchscript
from fastreid.utils.logger import setup_logger

logger = logging.getLogger("fastreid.torchscript_export")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Export a fastreid model to TorchScript")
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to the model's config file")
    parser.add_argument("--name", default="baseline", help="file name of the exported model (without .pt)")
    parser.add_argument("--output", default="ts_model", help="folder of the exported model")
    parser.add_argument("--batch-size", type=int, default=1, help="batch of the tracing input")
    parser.add_argument("--no-verify", action="store_true", help="skip the traced vs eager comparison")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: MODEL.WEIGHTS path KEY VALUE ...")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> str:
    """Run the export; returns the path of the ``.pt`` file."""
    args = get_parser().parse_args(argv)
    setup_logger(name="fastreid")
    cfg = export_cfg(args.config_file, args.opts)
    model = build_export_model(cfg)
    input_size = tuple(cfg.INPUT.SIZE_TEST)
    path = os.path.join(args.output, f"{args.name}.pt")
    traced = export_torchscript(model, path, input_size=input_size, batch_size=args.batch_size)
    if not args.no_verify:
        agreements = check_agreement(model, lambda x: traced(torch.from_numpy(x)).numpy(), input_size)
        for batch_size, agreement in agreements.items():
            logger.info(
                "TorchScript vs eager, batch %d: max abs diff %.3g, min cosine %.7f",
                batch_size,
                agreement.max_abs_diff,
                agreement.min_cosine,
            )
    return path


if __name__ == "__main__":
    main(sys.argv[1:])
