#!/usr/bin/env python
"""Export a trained fastreid model to ONNX (dynamic batch axis, 0-255 images in, features out).

    python tools/deploy/onnx_export.py --config-file configs/Market1501/bagtricks_R50.yml \
        --name baseline_R50 --output onnx_model MODEL.WEIGHTS logs/market1501/bagtricks_R50/model_final.pth

writes ``onnx_model/baseline_R50.onnx`` for INPUT.SIZE_TEST and checks it against PyTorch with onnxruntime.
"""
import argparse
import sys
from typing import Optional, Sequence

from fastreid.export import OnnxFeatureExtractor, export_onnx
from fastreid.export.cli import export_argument_parser, run_export


def get_parser() -> argparse.ArgumentParser:
    parser = export_argument_parser("ONNX", ".onnx", "onnx_model")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset version")
    parser.add_argument("--no-check", action="store_true", help="skip onnx.checker")
    parser.add_argument("--no-simplify", action="store_true", help="skip onnxsim even when it is installed")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> str:
    """Run the export; returns the path of the ``.onnx`` file (the batch axis is dynamic)."""
    args = get_parser().parse_args(argv)

    def export(model, path, input_size, batch_size):
        export_onnx(model, path, input_size=input_size, batch_size=batch_size, opset=args.opset,
                    check=not args.no_check, simplify=not args.no_simplify)
        return OnnxFeatureExtractor(path)

    return run_export(args, export, "onnxruntime", ".onnx")


if __name__ == "__main__":
    main(sys.argv[1:])
