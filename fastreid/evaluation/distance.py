"""Distance matrices between feature sets, computed in row chunks on the features' device.

* ``"cosine"``: ``1 - <q, g>`` of L2-normalised features.
* ``"euclidean"``: squared Euclidean distance ``|q|^2 + |g|^2 - 2 <q, g>`` (fast-reid and
  torchreid rank on the squared distance; the order is the same).

The Jaccard distance of k-reciprocal re-ranking lives in :mod:`fastreid.evaluation.rerank`.
"""
from typing import Iterator, Optional, Tuple

import torch
import torch.nn.functional as F

__all__ = ["METRICS", "prepare_features", "budget_chunk_rows", "distance_block", "iter_distance_chunks",
           "compute_distance_matrix", "pair_distance"]

METRICS = ("cosine", "euclidean")

# Query rows per chunk: 1024 x 100k gallery float32 is 400 MB.
DEFAULT_CHUNK = 1024
# Bytes of one float32 distance chunk when the rows are chosen from a budget: large enough
# that the matmul runs near its one-shot speed, small enough for MSMT17-size galleries.
DEFAULT_CHUNK_BYTES = 256 * 2**20


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"Unknown distance metric {metric!r}; expected one of {METRICS}.")


def prepare_features(feat: torch.Tensor, metric: str, inplace: bool = False) -> torch.Tensor:
    """Returns float features ready for :func:`iter_distance_chunks` (normalised for cosine).

    Args:
        feat: (N, D) features.
        metric: ``"cosine"`` or ``"euclidean"``.
        inplace: normalise a float32/float64 ``feat`` in place (saves an (N, D) copy; same
            values as ``F.normalize``).
    """
    _check_metric(metric)
    feat = feat.float() if feat.dtype != torch.float64 else feat
    if metric != "cosine":
        return feat
    if inplace:
        return feat.div_(feat.norm(p=2, dim=1, keepdim=True).clamp_min(1e-12))
    return F.normalize(feat, dim=1)


def budget_chunk_rows(num_rows: int, num_cols: int, budget_bytes: int = DEFAULT_CHUNK_BYTES,
                      min_rows: int = 256, bytes_per_element: int = 4) -> int:
    """Rows per chunk so that a (rows, num_cols) chunk of ``bytes_per_element`` per entry (float32: 4) fits
    ``budget_bytes``.

    At least ``min_rows`` (matmul efficiency), at most ``num_rows``.
    """
    row_bytes = bytes_per_element * max(num_cols, 1)
    return max(1, min(num_rows, max(min_rows, budget_bytes // row_bytes)))


def distance_block(query: torch.Tensor, gallery: torch.Tensor, metric: str,
                   gallery_sq: Optional[torch.Tensor] = None) -> torch.Tensor:
    """(c, G) distances of prepared features (see :func:`prepare_features`).

    Args:
        query: (c, D) prepared features.
        gallery: (G, D) prepared features.
        metric: ``"cosine"`` or ``"euclidean"``.
        gallery_sq: optional precomputed (G,) squared norms of ``gallery`` (euclidean).
    """
    if metric == "cosine":
        return torch.addmm(torch.ones((), dtype=query.dtype, device=query.device), query, gallery.t(), alpha=-1)
    if gallery_sq is None:
        gallery_sq = gallery.pow(2).sum(1)
    return torch.addmm(query.pow(2).sum(1, keepdim=True) + gallery_sq, query, gallery.t(), alpha=-2)


def iter_distance_chunks(query: torch.Tensor, gallery: torch.Tensor, metric: str,
                         chunk_size: int = DEFAULT_CHUNK,
                         prepared: bool = False) -> Iterator[Tuple[int, torch.Tensor]]:
    """Yields ``(row_offset, distances)`` for consecutive query chunks.

    Args:
        query: (Q, D) features.
        gallery: (G, D) features on the same device.
        metric: ``"cosine"`` or ``"euclidean"``.
        chunk_size: query rows per chunk.
        prepared: features were already passed through :func:`prepare_features`.

    Yields:
        offset and a (c, G) distance tensor (float32 for float32 features).
    """
    if not prepared:
        query, gallery = prepare_features(query, metric), prepare_features(gallery, metric)
    g_sq = gallery.pow(2).sum(1) if metric == "euclidean" else None
    for start in range(0, query.shape[0], chunk_size):
        yield start, distance_block(query[start:start + chunk_size], gallery, metric, g_sq)


def compute_distance_matrix(query: torch.Tensor, gallery: torch.Tensor, metric: str = "cosine",
                            chunk_size: int = DEFAULT_CHUNK, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Full (Q, G) distance matrix, filled chunk by chunk.

    Args:
        query: (Q, D) features.
        gallery: (G, D) features.
        metric: ``"cosine"`` or ``"euclidean"``.
        chunk_size: query rows per matmul.
        out: optional preallocated (Q, G) tensor.

    Returns:
        (Q, G) distances on the features' device.
    """
    if out is None:
        dtype = torch.float64 if query.dtype == torch.float64 else torch.float32
        out = torch.empty((query.shape[0], gallery.shape[0]), dtype=dtype, device=query.device)
    for start, dist in iter_distance_chunks(query, gallery, metric, chunk_size):
        out[start:start + dist.shape[0]] = dist
    return out


def pair_distance(a: torch.Tensor, b: torch.Tensor, metric: str, prepared: bool = True) -> torch.Tensor:
    """Distances between matching rows: (n, D), (n, D) -> (n,)."""
    if not prepared:
        a, b = prepare_features(a, metric), prepare_features(b, metric)
    dot = (a * b).sum(1)
    if metric == "cosine":
        return 1 - dot
    return a.pow(2).sum(1) + b.pow(2).sum(1) - 2 * dot
