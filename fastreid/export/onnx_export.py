"""Export to ONNX with a dynamic batch axis, and run the result with onnxruntime.

The graph takes ``images`` N×3×H×W float32 on the 0-255 scale (normalisation is inside the graph) and returns
``features`` N×D. H and W are fixed at export time; N is dynamic. ``onnx`` and ``onnxruntime`` are optional
dependencies (``pip install fastreid[deploy]``), imported only when used.
"""
import io
import logging
import os
import warnings
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..utils.file_io import atomic_write
from .verify import random_images
from .wrapper import FeatureExtractor, model_device

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "OnnxFeatureExtractor", "export_onnx"]

logger = logging.getLogger(__name__)

INPUT_NAME = "images"
OUTPUT_NAME = "features"


def export_onnx(
    model: nn.Module,
    path: str,
    *,
    input_size: Tuple[int, int],
    batch_size: int = 1,
    opset: int = 17,
    constant_folding: bool = True,
    check: bool = True,
    simplify: bool = True,
) -> str:
    """Export the eval-mode ``model`` to an ONNX file.

    Uses the TorchScript-based exporter (``dynamo=False``): the torch.export-based one needs the
    ``onnxscript`` package and gives nothing more for these convolutional models.

    Args:
        model: a reid model (wrapped in :class:`FeatureExtractor` unless it already is one).
        path: the ``.onnx`` file to write atomically (its folder is created).
        input_size: (H, W) of the input images.
        batch_size: batch of the example input used for tracing (the exported batch axis is dynamic anyway).
        opset: ONNX opset version.
        constant_folding: fold constant sub-graphs at export.
        check: run ``onnx.checker`` on the file.
        simplify: run ``onnxsim`` when it is installed (skipped with a log line otherwise).

    Returns:
        ``path``.
    """
    extractor = model if isinstance(model, FeatureExtractor) else FeatureExtractor(model)
    extractor.eval()
    images = random_images(batch_size, input_size).to(model_device(extractor))
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with warnings.catch_warnings():
        # dynamo=False is deliberate (see above), and its internals warn about their own deprecation.
        warnings.filterwarnings("ignore", ".*legacy TorchScript-based ONNX export.*", DeprecationWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx\..*")
        # IBN's InstanceNorm keeps no running statistics, so using the input's statistics is right in eval.
        warnings.filterwarnings("ignore", ".*operator 'instance_norm' is set to train=True.*", UserWarning)
        buffer = io.BytesIO()
        torch.onnx.export(
            extractor,
            (images,),
            buffer,
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=constant_folding,
        )
    atomic_write(path, lambda f: f.write(buffer.getbuffer()))
    logger.info(
        "Exported %s (opset %d, input N×3×%d×%d) to %s", type(extractor.model).__name__, opset, *input_size, path
    )
    if check or simplify:
        import onnx

        if check:
            onnx.checker.check_model(path)
            logger.info("onnx.checker: %s is valid", path)
        if simplify:
            _simplify(path, onnx)
    return path


def _simplify(path: str, onnx) -> None:
    try:
        import onnxsim
    except ImportError:
        logger.info("onnxsim is not installed; the graph is left unsimplified")
        return
    simplified, ok = onnxsim.simplify(onnx.load(path))
    if not ok:
        logger.warning("onnxsim could not validate the simplified graph; keeping the original %s", path)
        return
    atomic_write(path, lambda f: f.write(simplified.SerializeToString()))
    logger.info("Simplified %s with onnxsim", path)


class OnnxFeatureExtractor:
    """An exported model run by onnxruntime: N×3×H×W float 0-255 images → N×D features.

    Args:
        path: the ``.onnx`` file written by :func:`export_onnx`.
        providers: onnxruntime execution providers, in order of preference.
        num_threads: intra-op threads of onnxruntime; 0 lets it choose.

    Attributes:
        input_size: (H, W) the graph was exported for, or None when they are not fixed.
    """

    def __init__(self, path: str, providers: Sequence[str] = ("CPUExecutionProvider",), num_threads: int = 0) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = num_threads
        self.session = onnxruntime.InferenceSession(path, options, providers=list(providers))
        graph_input = self.session.get_inputs()[0]
        self.input_name = graph_input.name
        height, width = graph_input.shape[2:4]
        self.input_size: Optional[Tuple[int, int]] = (
            (height, width) if isinstance(height, int) and isinstance(width, int) else None
        )

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """
        Args:
            images: N×3×H×W images on the 0-255 scale.

        Returns:
            N×D float32 features.
        """
        images = np.ascontiguousarray(images, dtype=np.float32)
        return self.session.run(None, {self.input_name: images})[0]
