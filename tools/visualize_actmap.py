#!/usr/bin/env python
"""Where does the model look? Activation maps of the backbone's last feature map over input images.

    python tools/visualize_actmap.py --config-file CFG MODEL.WEIGHTS model.pth \
        [--images img.jpg dir/ ...] [--num-images 8] [--output DIR]

Without ``--images`` the first ``--num-images`` query images of DATASETS.TESTS[0] are used. Each image is
resized by the test transform and passed, normalised as the model does, through ``model.backbone``; the
activation is the channel-wise sum of squares of the feature map, bilinearly upsampled to the input size,
min-max normalised per image and colour-mapped (jet). One PNG per image is written into ``--output``
(default ``OUTPUT_DIR/actmap``): the image, the heat map and their 50/50 blend side by side, separated by
white gaps of 10 pixels, so it is ``3 * W + 20`` by ``H`` pixels for INPUT.SIZE_TEST ``(H, W)``.

For MGN, ``backbone`` is the shared stem (up to ``layer3[0]``), so the map is that stem's output.
"""
import argparse
import logging
import os
import sys
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from PIL import Image
from torch import nn

from fastreid.config import config_overrides
from fastreid.data import read_image
from fastreid.data.datasets import build_dataset
from fastreid.data.transforms import build_transforms
from fastreid.evaluation import inference_context
from fastreid.predictor import inference_argument_parser, load_inference_config, load_model
from fastreid.search import list_images
from fastreid.utils.logger import setup_logger

logger = logging.getLogger("fastreid.visualize_actmap")

GAP = 10  # white pixels between the panels


def normalize_images(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The backbone input for a (B, 3, H, W) 0-255 batch: the model's own preprocessing when it has one."""
    if hasattr(model, "preprocess_image"):
        return model.preprocess_image(images)
    return (images.to(model.pixel_mean.device) - model.pixel_mean) / model.pixel_std


@torch.no_grad()
def activation_maps(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Normalised activation maps.

    Args:
        model: has ``backbone`` (B×3×H×W → B×C×h×w) and either ``preprocess_image`` or ``pixel_mean`` /
            ``pixel_std`` buffers; used in eval mode.
        images: (B, 3, H, W) float images on the 0-255 scale.

    Returns:
        (B, H, W) maps in [0, 1] on the CPU: sum over channels of the squared features, upsampled
        bilinearly and min-max scaled per image (a constant map becomes all zeros).
    """
    with inference_context(model):
        features = model.backbone(normalize_images(model, images))
    maps = features.float().pow(2).sum(1, keepdim=True)
    maps = F.interpolate(maps, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0].cpu()
    low = maps.flatten(1).min(1).values[:, None, None]
    high = maps.flatten(1).max(1).values[:, None, None]
    return (maps - low) / (high - low).clamp_min(1e-12)


def render_panels(image: np.ndarray, activation: np.ndarray) -> Image.Image:
    """Image | jet heat map | 0.5 image + 0.5 heat map, side by side.

    Args:
        image: (H, W, 3) uint8 RGB.
        activation: (H, W) values in [0, 1].
    """
    heat = (colormaps["jet"](activation)[..., :3] * 255).round().astype(np.uint8)
    blend = (0.5 * image.astype(np.float32) + 0.5 * heat.astype(np.float32)).round().astype(np.uint8)
    h, w = activation.shape
    canvas = np.full((h, 3 * w + 2 * GAP, 3), 255, dtype=np.uint8)
    for i, panel in enumerate((image, heat, blend)):
        canvas[:, i * (w + GAP):i * (w + GAP) + w] = panel
    return Image.fromarray(canvas)


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
