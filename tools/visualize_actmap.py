#!/usr/bin/env python
"""Where does the model look? Activation maps of the backbone's last feature map over input images.

    python tools/visualize_actmap.py --config-file CFG MODEL.WEIGHTS model.pth \
        [--images img.jpg dir/ ...] [--num-images 8] [--output DIR]

Without ``--images`` the first ``--num-images`` query images of DATASETS.TESTS[0] are used. Each image is
resized by the test transform and passed, normalised as the model does, through ``model.backbone``; the
activation is the channel-wise sum of squares of the feature map, bilinearly upsampled to the input size,
min-max normalised per image and colour-mapped (jet). One PNG per image is written into ``--output``
(default ``OUTPUT_DIR/actmap``): the image, the heat map and their 50/50 blend side by side, separated by
white gaps of 10 pixels, so it is ``3 * W + 20`` by ``H`` pixels for INPUT.SIZE_TEST ``(H, W)``. The maps and
panels are :mod:`fastreid.evaluation.actmap`'s.

For MGN, ``backbone`` is the shared stem (up to ``layer3[0]``), so the map is that stem's output.
"""
import argparse
import logging
import os
import sys
from typing import List, Optional, Sequence

import torch

from fastreid.config import config_overrides
from fastreid.data import read_image
from fastreid.data.datasets import build_dataset
from fastreid.data.transforms import build_transforms
from fastreid.evaluation.actmap import GAP, activation_maps, render_panels  # noqa: F401 - GAP for callers
from fastreid.predictor import inference_argument_parser, load_inference_config, load_model
from fastreid.search import list_images
from fastreid.utils.logger import setup_logger

logger = logging.getLogger("fastreid.visualize_actmap")


def visualize_actmaps(cfg, image_paths: Sequence[str], output: str, batch_size: int = 16) -> List[str]:
    """Writes one panel PNG per image (see the module docstring); returns the written paths."""
    model = load_model(cfg)
    transform = build_transforms(cfg, is_train=False)
    os.makedirs(output, exist_ok=True)
    written = []
    for start in range(0, len(image_paths), batch_size):
        paths = image_paths[start:start + batch_size]
        images = torch.stack([transform(read_image(p)) for p in paths])
        maps = activation_maps(model, images).numpy()
        for offset, (path, image, activation) in enumerate(zip(paths, images, maps)):
            rgb = image.permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
            name = f"{start + offset:03d}_{os.path.splitext(os.path.basename(path))[0]}.png"
            render_panels(rgb, activation).save(os.path.join(output, name))
            written.append(os.path.join(output, name))
    logger.info("Wrote %d activation maps to %s", len(written), output)
    return written


def get_parser() -> argparse.ArgumentParser:
    """The tool's arguments; parse with ``parse_intermixed_args`` (overrides may stand among the flags)."""
    parser = inference_argument_parser(__doc__)
    parser.add_argument("--images", nargs="+", default=[], help="image files and/or folders")
    parser.add_argument("--num-images", type=int, default=8, help="query images to use without --images")
    parser.add_argument("--output", default="", help="output folder (default OUTPUT_DIR/actmap)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> List[str]:
    args = get_parser().parse_intermixed_args(argv)
    setup_logger(name="fastreid")
    cfg = load_inference_config(args.config_file, opts=config_overrides(args))
    if args.images:
        paths = list_images(args.images)
    else:
        paths = [record[0] for record in build_dataset(cfg.DATASETS.TESTS[0], cfg).query[:args.num_images]]
    return visualize_actmaps(cfg, paths, args.output or os.path.join(cfg.OUTPUT_DIR, "actmap"),
                             batch_size=cfg.TEST.IMS_PER_BATCH)


if __name__ == "__main__":
    main(sys.argv[1:])
