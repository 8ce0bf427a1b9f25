"""The one place that imports faiss and builds its indexes, for evaluation and for ``fastreid.search``.

faiss is optional: nothing imports it at module level, :func:`import_faiss` imports it on first use and
fails with an error saying how to install it.

Metrics (:data:`METRIC_TABLE`) follow ``TEST.METRIC``:

* ``"cosine"``: L2-normalised features searched by inner product; the score is the cosine similarity,
  higher is closer, and the distance is ``1 - score``.
* ``"euclidean"``: raw features searched by L2; the score is the squared Euclidean distance, lower is
  closer, and the distance is the score.

Index kinds (:data:`INDEX_KINDS`): ``"flat"`` is exact; the others are approximate and meant for large
galleries:

* ``"ivf"``: inverted lists over a k-means coarse quantiser (``nlist`` lists), full vectors in the lists;
  ``nprobe`` lists are visited per query.
* ``"ivfpq"``: as ``"ivf"`` but each vector is stored as a product-quantised code of ``pq_m`` sub-vectors of
  ``pq_nbits`` bits (``pq_m * pq_nbits / 8`` bytes instead of ``4 * D``); with ``refine`` the full vectors are
  kept too and the ``refine_factor * k`` best PQ candidates are re-ranked exactly.
* ``"hnsw"``: a graph with ``hnsw_m`` links per node; ``ef_search`` candidates per query.

IVF kinds are trained (:func:`train_faiss_index`) on a seeded random sample of the gallery, so training time and
memory do not grow with the gallery; :func:`set_search_params` sets ``nprobe`` / ``efSearch`` / the refine
factor on a built or loaded index.
"""
import importlib
import logging
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Dict, Optional

import numpy as np
import torch

__all__ = ["DEFAULT_EF_SEARCH", "DEFAULT_NPROBE", "INDEX_KINDS", "METRIC_TABLE", "FaissMetric", "build_faiss_index",
           "default_train_size", "import_faiss", "is_faiss_available", "set_search_params", "train_faiss_index",
           "training_rows"]

logger = logging.getLogger(__name__)

INDEX_KINDS = ("flat", "ivf", "ivfpq", "hnsw")
# faiss' k-means asks for at least 39 training points per centroid (it warns below that).
_MIN_POINTS_PER_LIST = 39

# Query-time defaults. HNSW: at 1 M gallery vectors (benchmarks/bench_index.py, docs/benchmarks.md) efSearch 96
# finds 96 % of the exact top 10 in 8 % of the flat index's query time; 64 stays below 95 %.
DEFAULT_NPROBE = 8
DEFAULT_EF_SEARCH = 96

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


def _factory_string(dim: int, kind: str, nlist: int, hnsw_m: int, pq_m: int, pq_nbits: int, refine: bool) -> str:
    """The faiss ``index_factory`` description of ``kind``, after checking its parameters."""
    def positive(name: str, value: int, flag: str) -> None:
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}; pass e.g. {flag}")

    if kind in ("ivf", "ivfpq"):
        positive("nlist", nlist, "--nlist 1024")
    if kind == "hnsw":
        positive("hnsw_m", hnsw_m, "--hnsw-m 32")
    if kind == "ivfpq":
        positive("pq_m", pq_m, "--pq-m 64")
        if dim % pq_m:
            raise ValueError(f"pq_m={pq_m} does not divide the feature dimension {dim}; pick a divisor of {dim} "
                             f"(e.g. --pq-m {next(m for m in (64, 32, 16, 8, 4, 2, 1) if dim % m == 0)})")
        if not isinstance(pq_nbits, int) or not 1 <= pq_nbits <= 16:
            raise ValueError(f"pq_nbits must be an integer in [1, 16], got {pq_nbits!r}; 8 is the usual choice")
    # "np": no polysemous training, which only serves Hamming-filtered search and costs seconds per sub-quantiser
    return {"flat": "Flat", "ivf": f"IVF{nlist},Flat", "hnsw": f"HNSW{hnsw_m},Flat",
            "ivfpq": f"IVF{nlist},PQ{pq_m}x{pq_nbits}np" + (",RFlat" if refine else "")}[kind]


def build_faiss_index(dim: int, metric: str, kind: str = "flat", *, nlist: int = 1, hnsw_m: int = 32,
                      pq_m: int = 64, pq_nbits: int = 8, refine: bool = False, use_gpu: bool = False,
                      gpu_device: Optional[int] = None) -> Any:
    """An empty faiss index for ``dim``-dimensional features.

    The caller normalises features when ``METRIC_TABLE[metric].normalize``, trains the index when it is
    not ``is_trained`` (IVF kinds; :func:`train_faiss_index`) and adds the vectors.

    Args:
        dim: feature dimension D.
        metric: a key of :data:`METRIC_TABLE` (``"cosine"`` or ``"euclidean"``).
        kind: a member of :data:`INDEX_KINDS`.
        nlist: IVF inverted lists (``"ivf"``, ``"ivfpq"``).
        hnsw_m: HNSW links per node (``"hnsw"`` only).
        pq_m: PQ sub-vectors per code (``"ivfpq"`` only); must divide ``dim``.
        pq_nbits: bits per PQ sub-vector code (``"ivfpq"`` only), 1 to 16.
        refine: keep the full vectors and re-rank the PQ candidates exactly (``"ivfpq"`` only).
        use_gpu: move the index to a GPU when faiss-gpu and CUDA exist (float16 off); otherwise the CPU
            index is kept (logged at debug level).
        gpu_device: CUDA device of the GPU index; ``None`` is the current device.

    Returns:
        The faiss index (a GPU index keeps its resources referenced as ``gpu_resources``).

    Raises:
        ValueError: unknown ``metric`` or ``kind``, or a bad parameter of ``kind`` (named in the message).
        ImportError: faiss is not installed.
    """
    if metric not in METRIC_TABLE:
        raise ValueError(f"Unknown metric {metric!r}; expected one of {tuple(METRIC_TABLE)}")
    if kind not in INDEX_KINDS:
        raise ValueError(f"Unknown index kind {kind!r}; expected one of {INDEX_KINDS}")
    description = _factory_string(dim, kind, nlist, hnsw_m, pq_m, pq_nbits, refine)
    faiss = import_faiss()
    index = faiss.index_factory(dim, description, getattr(faiss, METRIC_TABLE[metric].faiss_metric))
    if use_gpu:
        if hasattr(faiss, "StandardGpuResources") and torch.cuda.is_available():
            return _to_gpu(faiss, index, gpu_device)
        logger.debug("faiss GPU index unavailable (needs faiss-gpu and CUDA); using the CPU index.")
    return index


def default_train_size(num: int, nlist: int) -> int:
    """Training sample size of an IVF index: at least 100k vectors and 39 per list, at most ``num``."""
    return min(num, max(100_000, _MIN_POINTS_PER_LIST * nlist))


def training_rows(num: int, nlist: int, *, train_size: Optional[int] = None, seed: int = 0) -> np.ndarray:
    """Sorted indices of the seeded random sample an IVF index of ``nlist`` lists is trained on.

    Args:
        num: vectors in the gallery.
        nlist: inverted lists of the index.
        train_size: vectors in the sample (default :func:`default_train_size`); at most ``num`` are used.
        seed: seed of the sample, so the same gallery gives the same index.

    Raises:
        ValueError: fewer vectors than inverted lists (k-means needs one per list), or a bad ``train_size``.
    """
    if num < nlist:
        raise ValueError(f"nlist={nlist} inverted lists need at least as many vectors, got {num}; "
                         f"lower --nlist (about 4*sqrt(N) is usual)")
    if train_size is not None and train_size < nlist:
        raise ValueError(f"train_size={train_size} is below nlist={nlist}; train on at least "
                         f"{_MIN_POINTS_PER_LIST * nlist} vectors")
    size = min(num, train_size or default_train_size(num, nlist))
    if size == num:
        return np.arange(num)
    return np.sort(np.random.default_rng(seed).choice(num, size, replace=False))


def _ivf_nlist(index: Any) -> int:
    """Inverted lists of an IVF index (1 for the other kinds)."""
    return getattr(import_faiss().try_extract_index_ivf(index), "nlist", 1)


def train_faiss_index(index: Any, feats: Any, *, train_size: Optional[int] = None, seed: int = 0) -> int:
    """Trains an untrained index (IVF kinds) on a seeded random sample of ``feats``; no-op when trained.

    Args:
        index: a faiss index from :func:`build_faiss_index`.
        feats: (N, D) float32 features, already normalised if the metric asks for it: an array, or any object
            with ``len()`` whose ``feats[rows]`` gives the (len(rows), D) array of sorted row indices (a feature
            store read in chunks).
        train_size, seed: the sample, see :func:`training_rows`.

    Returns:
        The number of vectors trained on (0 when the index needed no training).

    Raises:
        ValueError: see :func:`training_rows`.
    """
    if index.is_trained:
        return 0
    nlist = _ivf_nlist(index)
    rows = training_rows(len(feats), nlist, train_size=train_size, seed=seed)
    logger.info("Training the index on %d of %d vectors (%d lists)", len(rows), len(feats), nlist)
    whole = isinstance(feats, np.ndarray) and len(rows) == len(feats)
    index.train(feats if whole else feats[rows])  # the whole array is used as it is, not copied
    return len(rows)


def set_search_params(index: Any, *, nprobe: int = DEFAULT_NPROBE, ef_search: int = DEFAULT_EF_SEARCH,
                      refine_factor: int = 1) -> None:
    """Sets the query-time parameters the index has: IVF ``nprobe``, HNSW ``efSearch``, refine ``k_factor``.

    Args:
        index: a faiss index built by :func:`build_faiss_index` (or read back from disk).
        nprobe: inverted lists visited per query (IVF kinds).
        ef_search: candidate list size per query (HNSW).
        refine_factor: PQ candidates re-ranked exactly per wanted result (refined IVF-PQ).
    """
    faiss = import_faiss()
    if hasattr(index, "k_factor"):
        index.k_factor = float(refine_factor)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = int(nprobe)
    if hasattr(index, "hnsw"):
        index.hnsw.efSearch = int(ef_search)
