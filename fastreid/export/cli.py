"""What the export scripts under ``tools/deploy/`` share: their arguments and the export-then-verify run."""
import argparse
import logging
import os
from typing import Callable, Tuple

import numpy as np

from fastreid.config import add_config_arguments, config_overrides
from fastreid.utils.logger import setup_logger

from .verify import check_agreement
from .wrapper import FeatureExtractor, build_export_model, export_cfg

logger = logging.getLogger(__name__)

# (model, output path, (H, W), tracing batch size) -> a callable running the exported model on N×3×H×W arrays.
ExportFn = Callable[[FeatureExtractor, str, Tuple[int, int], int], Callable[[np.ndarray], np.ndarray]]


def export_argument_parser(format_name: str, extension: str, default_output: str) -> argparse.ArgumentParser:
    """The arguments every export script takes; a script adds its format's own options.

    ``--config-file`` and the trailing ``KEY VALUE`` overrides (which name the trained weights,
    ``MODEL.WEIGHTS path``) come from :func:`fastreid.config.add_config_arguments`.

    Args:
        format_name: shown in the help, e.g. ``"ONNX"``.
        extension: of the exported file, e.g. ``".onnx"``.
        default_output: default folder of the exported file.
    """
    parser = argparse.ArgumentParser(description=f"Export a fastreid model to {format_name}")
    add_config_arguments(parser)
    parser.add_argument("--name", default="baseline", help=f"file name of the exported model (without {extension})")
    parser.add_argument("--output", default=default_output, help="folder of the exported model")
    parser.add_argument("--batch-size", type=int, default=1, help="batch of the tracing input")
    parser.add_argument("--no-verify", action="store_true",
                        help=f"skip comparing the {format_name} model's features with PyTorch's")
    return parser


def run_export(args: argparse.Namespace, export_fn: ExportFn, format_name: str, extension: str) -> str:
    """Build the model of ``args``, export it with ``export_fn`` and, unless ``--no-verify``, log its agreement.

    Returns:
        The path of the exported file, ``<output>/<name><extension>``.
    """
    setup_logger(name="fastreid")
    cfg = export_cfg(args.config_file, config_overrides(args))
    model = build_export_model(cfg)
    input_size = tuple(cfg.INPUT.SIZE_TEST)
    path = os.path.join(args.output, f"{args.name}{extension}")
    exported = export_fn(model, path, input_size, args.batch_size)
    if not args.no_verify:
        for batch_size, agreement in check_agreement(model, exported, input_size).items():
            logger.info("%s vs PyTorch, batch %d: max abs diff %.3g, min cosine %.7f",
                        format_name, batch_size, agreement.max_abs_diff, agreement.min_cosine)
    return path
