"""Evaluator protocol and the inference loop that feeds it."""
import logging
import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Dict, Iterable, Mapping, Optional, Union

import torch
from tabulate import tabulate
from tqdm import tqdm

from fastreid.utils import comm
from fastreid.utils.memory import release_freed_memory
from fastreid.utils.precision import autocast_for

logger = logging.getLogger(__name__)

__all__ = ["DatasetEvaluator", "forward_features", "inference_on_dataset", "inference_context", "print_csv_format"]

# What a meta-architecture takes in eval mode: {"images": B×3×H×W (B×S×3×H×W for tracklets), ...labels} or the
# bare image tensor.
Batch = Union[Mapping[str, Any], torch.Tensor]


class DatasetEvaluator:
    """Base class: accumulates model outputs over a dataset and computes metrics.

    ``reset`` is called before inference, ``process`` on every batch and ``evaluate``
    once at the end (on every process; non-main processes may return ``{}``).
    """

    def reset(self) -> None:
        """Clears the state before a new round of inference."""

    def process(self, inputs: Mapping[str, Any], outputs: Any) -> None:
        """Consumes one batch: ``inputs`` as given to the model, ``outputs`` its result."""

    def evaluate(self) -> Dict[str, Any]:
        """Returns metrics as an ordered ``{name: value}`` dict."""
        raise NotImplementedError


@contextmanager
def inference_context(model: torch.nn.Module):
    """Puts ``model`` in eval mode for the block and restores its training flag after."""
    training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training)


def _mirrored(inputs: Batch) -> Batch:
    """``inputs`` with the images (or every frame of a tracklet batch) flipped left-right (a shallow copy of a
    dict; its other entries are shared)."""
    if isinstance(inputs, torch.Tensor):
        return inputs.flip(dims=[-1])
    flipped = dict(inputs)
    flipped["images"] = inputs["images"].flip(dims=[-1])
    return flipped


def forward_features(model: torch.nn.Module, inputs: Batch, flip: bool = False) -> torch.Tensor:
    """The features of one batch, as evaluation and :class:`fastreid.predictor.FeatureExtractor` compute them.

    The caller sets eval mode and ``torch.no_grad`` (see :func:`inference_context`).

    Args:
        model: maps ``inputs`` to (B, D) features in eval mode.
        inputs: ``{"images": (B, 3, H, W) float 0-255, ...}`` as the test loader yields it, or the bare
            (B, 3, H, W) image tensor. Tracklet batches hold (B, S, 3, H, W) frames; a video model
            (:class:`fastreid.modeling.meta_arch.VideoBaseline`) pools them into one feature per tracklet,
            running long tracklets through its backbone in chunks of TEST.FRAME_CHUNK frames.
        flip: average the features of each image (each tracklet) and its horizontal mirror.

    Returns:
        (B, D) features: ``model(inputs)``, or ``(model(inputs) + model(mirrored inputs)) / 2`` with ``flip``.
    """
    feats = model(inputs)
    if flip:
        feats = (feats + model(_mirrored(inputs))) / 2
    return feats


def _holds_tracklets(inputs: Batch) -> bool:
    images = inputs.get("images") if isinstance(inputs, Mapping) else inputs
    return isinstance(images, torch.Tensor) and images.dim() == 5


def inference_on_dataset(model: torch.nn.Module, data_loader: Iterable[Dict[str, Any]],
                         evaluator: DatasetEvaluator, flip_test: bool = False,
                         precision: Optional[torch.dtype] = None) -> Dict[str, Any]:
    """Runs ``model`` over ``data_loader`` and evaluates its outputs.

    Args:
        model: maps an input dict (``"images"``: (B, 3, H, W) float 0-255, or (B, S, 3, H, W) frames of
            tracklets, plus labels) to (B, D) features. Run under ``torch.no_grad`` in eval mode; the training
            flag is restored afterwards.
        data_loader: iterable of input dicts (every process gets its own shard).
        evaluator: receives ``process(inputs, features)`` for every batch.
        flip_test: average the features of each image and its horizontal mirror.
        precision: autocast dtype of the forward pass (``torch.bfloat16``, ``torch.float16``; see
            :func:`fastreid.utils.precision.precision_from_config`), None for float32. The evaluator always
            receives float32 features.

    Returns:
        ``evaluator.evaluate()`` (``{}`` on non-main processes for reid evaluation).
    """
    total = len(data_loader) if hasattr(data_loader, "__len__") else None
    logger.info("Start inference on %s batches", total if total is not None else "?")
    evaluator.reset()
    start = time.perf_counter()
    num_samples = 0
    device = next(model.parameters(), torch.empty(0)).device
    with inference_context(model), torch.no_grad():
        for inputs in tqdm(data_loader, total=total, disable=not comm.is_main_process(),
                           desc="Inference", leave=False):
            with autocast_for(precision, device):
                outputs = forward_features(model, inputs, flip=flip_test)
            if isinstance(outputs, torch.Tensor):
                outputs = outputs.float()
            evaluator.process(inputs, outputs)
            num_samples += len(outputs)
            if _holds_tracklets(inputs):
                # Tracklets differ in length: without a trim the freed frame buffers pile up in the heap (see
                # fastreid.utils.memory), and the resident size grows with the number of tracklets.
                del inputs, outputs
                release_freed_memory()
    elapsed = time.perf_counter() - start
    logger.info("Inference done: %d samples (images or tracklets) in %.2f s (%.1f samples/s per process)",
                num_samples, elapsed, num_samples / max(elapsed, 1e-9))
    results = evaluator.evaluate()
    return results if results is not None else {}


def print_csv_format(results: Mapping[str, Any]) -> str:
    """Logs ``results`` as a one-row table (and returns it).

    Args:
        results: ``{metric: value}``, or ``{dataset: {metric: value}}`` for one row per dataset.
    """
    if results and all(isinstance(v, Mapping) for v in results.values()):
        rows = OrderedDict(results)
    else:
        rows = OrderedDict([("", results)])
    metrics = list(next(iter(rows.values())).keys()) if rows else []
    table = tabulate([[name] + [v.get(m) for m in metrics] for name, v in rows.items()],
                     headers=["Dataset"] + metrics, tablefmt="pipe", floatfmt=".2f", numalign="left")
    logger.info("Evaluation results in csv format:\n%s", table)
    return table
