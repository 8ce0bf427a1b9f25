#!/usr/bin/env python
"""Extract features with an exported ONNX model on onnxruntime (CPU), one ``.npy`` file per image.

    python tools/deploy/onnx_inference.py --model-path onnx_model/baseline_R50.onnx \
        --input "query/*.jpg" extra.jpg --output features

Images are resized (bicubic) to the size the model was exported for, as the test loader does; each feature
vector is saved as ``<output>/<image name without extension>.npy`` (shape D).
"""
import argparse
import glob
import logging
import os
import sys
from typing import List, Optional, Sequence

import numpy as np

from fastreid.export import OnnxFeatureExtractor, load_images
from fastreid.utils.logger import setup_logger

logger = logging.getLogger("fastreid.onnx_inference")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Extract reid features with an ONNX model")
    parser.add_argument("--model-path", required=True, help="the .onnx file")
    parser.add_argument("--input", nargs="+", required=True, help="image files or glob patterns")
    parser.add_argument("--output", default="onnx_output", help="folder of the .npy feature files")
    parser.add_argument("--height", type=int, default=0, help="input height when the model's is not fixed")
    parser.add_argument("--width", type=int, default=0, help="input width when the model's is not fixed")
    parser.add_argument("--batch-size", type=int, default=16, help="images per onnxruntime call")
    parser.add_argument("--l2-normalize", action="store_true", help="save unit-length features")
    return parser


def expand_inputs(patterns: Sequence[str]) -> List[str]:
    """Files named by ``patterns``, glob patterns expanded (sorted), in the given order."""
    paths: List[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(os.path.expanduser(pattern))) if glob.has_magic(pattern) else [pattern]
        if not matches:
            logger.warning("No file matches %s", pattern)
        paths.extend(matches)
    return paths


def main(argv: Optional[Sequence[str]] = None) -> List[str]:
    """Run the extraction; returns the paths of the saved ``.npy`` files."""
    args = get_parser().parse_args(argv)
    setup_logger(name="fastreid")
    model = OnnxFeatureExtractor(args.model_path)
    input_size = model.input_size or (args.height, args.width)
    if min(input_size) <= 0:
        raise SystemExit(f"{args.model_path} has no fixed input size: pass --height and --width")
    paths = expand_inputs(args.input)
    os.makedirs(args.output, exist_ok=True)
    saved = []
    for start in range(0, len(paths), args.batch_size):
        batch = paths[start : start + args.batch_size]
        features = model(load_images(batch, input_size))
        if args.l2_normalize:
            features = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
        for path, feature in zip(batch, features):
            out = os.path.join(args.output, os.path.splitext(os.path.basename(path))[0] + ".npy")
            np.save(out, feature)
            saved.append(out)
    logger.info("Saved %d feature files to %s", len(saved), args.output)
    return saved


if __name__ == "__main__":
    main(sys.argv[1:])
