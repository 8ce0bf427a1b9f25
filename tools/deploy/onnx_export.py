#!/usr/bin/env python
"""Export a trained fastreid model to ONNX (dynamic batch axis, 0-255 images in, features out).

    python tools/deploy/onnx_export.py --config-file configs/Market1501/bagtricks_R50.yml \
        --name baseline_R50 --output onnx_model MODEL.WEIGHTS logs/market1501/bagtricks_R50/model_final.pth

writes ``onnx_model/baseline_R50.onnx`` for INPUT.SIZE_TEST and checks it against PyTorch with onnxruntime.
"""
import argparse
import logging
import os
import sys
from typing import Optional, Sequence

from fastreid.export import OnnxFeatureExtractor, build_export_model, check_agreement, export_cfg, export_onnx
from fastreid.utils.logger import setup_logger

logger = logging.getLogger("fastreid.onnx_export")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Export a fastreid model to ONNX")
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to the model's config file")
    parser.add_argument("--name", default="baseline", help="file name of the exported model (without .onnx)")
    parser.add_argument("--output", default="onnx_model", help="folder of the exported model")
    parser.add_argument("--batch-size", type=int, default=1, help="batch of the tracing input (the axis is dynamic)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset version")
    parser.add_argument("--no-check", action="store_true", help="skip onnx.checker")
    parser.add_argument("--no-simplify", action="store_true", help="skip onnxsim even when it is installed")
    parser.add_argument("--no-verify", action="store_true", help="skip the onnxruntime vs PyTorch comparison")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: MODEL.WEIGHTS path KEY VALUE ...")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> str:
    """Run the export; returns the path of the ``.onnx`` file."""
    args = get_parser().parse_args(argv)
    setup_logger(name="fastreid")
    cfg = export_cfg(args.config_file, args.opts)
    model = build_export_model(cfg)
    input_size = tuple(cfg.INPUT.SIZE_TEST)
    path = os.path.join(args.output, f"{args.name}.onnx")
    export_onnx(
        model,
        path,
        input_size=input_size,
        batch_size=args.batch_size,
        opset=args.opset,
        check=not args.no_check,
        simplify=not args.no_simplify,
    )
    if not args.no_verify:
        for batch_size, agreement in check_agreement(model, OnnxFeatureExtractor(path), input_size).items():
            logger.info(
                "onnxruntime vs PyTorch, batch %d: max abs diff %.3g, min cosine %.7f",
                batch_size,
                agreement.max_abs_diff,
                agreement.min_cosine,
            )
    return path


if __name__ == "__main__":
    main(sys.argv[1:])
