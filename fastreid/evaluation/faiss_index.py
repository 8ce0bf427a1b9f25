"""The one place that imports faiss and builds its indexes, for evaluation and for ``fastreid.search``.

faiss is optional: nothing imports it at module level, :func:`import_faiss` imports it on first use and
fails with an error saying how to install it.

Metrics (:data:`METRIC_TABLE`) follow ``TEST.METRIC``:

* ``"cosine"``: L2-normalised features searched by inner product; the score is the cosine similarity,
  higher is closer, and the distance is ``1 - score``.
* ``"euclidean"``: raw features searched by L2; the score is the squared Euclidean distance, lower is
  closer, and the distance is the score.

Index kinds (:data:`INDEX_KINDS`): ``"flat"`` is exact; ``"ivf"`` (inverted lists over a k-means coarse
quantiser, ``nlist`` lists) and ``"hnsw"`` (graph with ``hnsw_m`` links per node) are approximate and meant
for large galleries.
"""
import importlib
import logging
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Dict, Optional

import numpy as np
import torch

__all__ = ["INDEX_KINDS", "METRIC_TABLE", "FaissMetric", "build_faiss_index", "import_faiss",
           "is_faiss_available"]

logger = logging.getLogger(__name__)

INDEX_KINDS = ("flat", "ivf", "hnsw")

_INSTALL_HINT = "faiss is not installed: pip install faiss-cpu (or faiss-gpu for GPU indexes)."


@dataclass(frozen=True)
class FaissMetric:
    """How a ``TEST.METRIC`` name maps onto faiss.

    Attributes:
        faiss_metric: name of the faiss metric constant (``"METRIC_INNER_PRODUCT"``, ``"METRIC_L2"``).
        normalize: features are L2-normalised before they are added or searched.
        higher_is_closer: larger scores mean nearer items (similarities) rather than farther (distances).
    """

    faiss_metric: str
    normalize: bool
    higher_is_closer: bool

    def to_distance(self, scores: np.ndarray) -> np.ndarray:
        """faiss search scores (Q, k) -> float64 distances of ``TEST.METRIC`` (lower is closer)."""
        scores = scores.astype(np.float64)
        return 1.0 - scores if self.higher_is_closer else scores


METRIC_TABLE: Dict[str, FaissMetric] = {
    "cosine": FaissMetric("METRIC_INNER_PRODUCT", normalize=True, higher_is_closer=True),
    "euclidean": FaissMetric("METRIC_L2", normalize=False, higher_is_closer=False),
}


def import_faiss() -> ModuleType:
    """The faiss module, imported on first use.

    Raises:
        ImportError: faiss is not installed (the message names ``pip install faiss-cpu``).
    """
    try:
        return importlib.import_module("faiss")
    except ImportError as e:
        raise ImportError(_INSTALL_HINT) from e


def is_faiss_available() -> bool:
    """Whether faiss can be imported."""
    try:
        import_faiss()
    except ImportError:
        return False
    return True


def _to_gpu(faiss: ModuleType, index: Any, device: Optional[int]) -> Any:
    res = faiss.StandardGpuResources()
    options = faiss.GpuClonerOptions()
    options.useFloat16 = False  # the evaluation's error bound assumes float32 arithmetic
    gpu_index = faiss.index_cpu_to_gpu(res, torch.cuda.current_device() if device is None else device, index,
                                       options)
    gpu_index.gpu_resources = res  # keeps the resources alive as long as the index
    return gpu_index


def build_faiss_index(dim: int, metric: str, kind: str = "flat", *, nlist: int = 1, hnsw_m: int = 32,
                      use_gpu: bool = False, gpu_device: Optional[int] = None) -> Any:
    """An empty faiss index for ``dim``-dimensional features.

    The caller normalises features when ``METRIC_TABLE[metric].normalize``, trains the index when it is
    not ``is_trained`` (``"ivf"``) and adds the vectors.

    Args:
        dim: feature dimension D.
        metric: a key of :data:`METRIC_TABLE` (``"cosine"`` or ``"euclidean"``).
        kind: a member of :data:`INDEX_KINDS`.
        nlist: IVF inverted lists (``"ivf"`` only).
        hnsw_m: HNSW links per node (``"hnsw"`` only).
        use_gpu: move the index to a GPU when faiss-gpu and CUDA exist (float16 off); otherwise the CPU
            index is kept (logged at debug level).
        gpu_device: CUDA device of the GPU index; ``None`` is the current device.

    Returns:
        The faiss index (a GPU index keeps its resources referenced as ``gpu_resources``).

    Raises:
        ValueError: unknown ``metric`` or ``kind``.
        ImportError: faiss is not installed.
    """
    if metric not in METRIC_TABLE:
        raise ValueError(f"Unknown metric {metric!r}; expected one of {tuple(METRIC_TABLE)}")
    if kind not in INDEX_KINDS:
        raise ValueError(f"Unknown index kind {kind!r}; expected one of {INDEX_KINDS}")
    faiss = import_faiss()
    description = {"flat": "Flat", "ivf": f"IVF{nlist},Flat", "hnsw": f"HNSW{hnsw_m},Flat"}[kind]
    index = faiss.index_factory(dim, description, getattr(faiss, METRIC_TABLE[metric].faiss_metric))
    if use_gpu:
        if hasattr(faiss, "StandardGpuResources") and torch.cuda.is_available():
            return _to_gpu(faiss, index, gpu_device)
        logger.debug("faiss GPU index unavailable (needs faiss-gpu and CUDA); using the CPU index.")
    return index
