"""Exact CMC / mAP / mINP from a faiss top-k search.

faiss (flat inner-product index for cosine, flat L2 for euclidean; a GPU index when
faiss-gpu and CUDA exist) returns each query's ``topk`` nearest gallery items by its own
float32 arithmetic. The metrics are then made exact:

* The query's candidates and its same-identity gallery items get exact float64
  distances. These, not faiss's, decide every comparison, so the numbers are those of
  :func:`~fastreid.evaluation.rank.evaluate_rank` on
  ``compute_distance_matrix(query.double(), gallery.double(), metric)`` (same protocol,
  same ``(distance, gallery index)`` tie rule) up to float64 rounding. float64 is the
  reference because float32 GEMM results depend on the chunk shape in the last bits.
* faiss's error is at most ``eps = 1.05 (D + 8) 2^-24 (|q| + max|g|)^2`` (worst-case
  float32 dot-product bound), so every gallery item with exact distance below
  ``R = (faiss distance of the last candidate) - eps`` is among the candidates. When the
  hardest positive is below ``R``, every item ordered before any positive is known and
  the ranks are counted from the candidates alone.
* Other queries fall back to :mod:`~fastreid.evaluation.exact_rank`: a float32 row in
  which the positives and every negative within ``eps`` of a positive get exact values.
"""
import logging
from typing import Any, Tuple

import numpy as np
import torch

from .distance import METRICS, prepare_features
from .exact_rank import ExactDistance, SameIdentity, error_bound, rank_screened
from .faiss_index import METRIC_TABLE, build_faiss_index
from .rank import ArrayLike, GalleryGroups, RankAccumulator

logger = logging.getLogger(__name__)

__all__ = ["evaluate_rank_faiss", "index_gallery"]

# Query rows whose candidates are checked at once.
_RECHECK_ROWS = 256
# Gallery rows per block when adding to the index.
_GALLERY_BLOCK = 4096


def index_gallery(gallery: torch.Tensor, metric: str, use_gpu: bool = True) -> Any:
    """Exact (flat) faiss index over the gallery (:func:`~.faiss_index.build_faiss_index`).

    Args:
        gallery: (G, D) features; normalised here for cosine.
        metric: ``"cosine"`` (inner product of normalised features) or ``"euclidean"``
            (squared L2).
        use_gpu: GPU index when faiss-gpu and CUDA exist; False forces the CPU index.

    Returns:
        The index (with its GPU resources kept referenced).
    """
    device = gallery.device.index if gallery.is_cuda else None
    index = build_faiss_index(gallery.shape[1], metric, "flat", use_gpu=use_gpu, gpu_device=device)
    # Added in blocks so that no prepared copy of the whole gallery is held besides faiss's.
    for s in range(0, gallery.shape[0], _GALLERY_BLOCK):
        block = prepare_features(gallery[s:s + _GALLERY_BLOCK], metric).float().cpu().numpy()
        index.add(np.ascontiguousarray(block))
    return index


def _count_ranks(values: np.ndarray, cand: np.ndarray, is_neg: np.ndarray, pd: np.ndarray, pi: np.ndarray,
                 npos: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ranks of the positives when the candidates hold every item ordered before them.

    Args:
        values, cand, is_neg: (r, k) candidate distances, gallery indices, negative mask.
        pd, pi: (r, M) positives sorted by (distance, index), padded with (inf, maxint).
        npos: (r,) number of positives (> 0).

    Returns:
        first_rank, AP and INP, each (r,).
    """
    before = (values[:, None, :] < pd[:, :, None]) | ((values[:, None, :] == pd[:, :, None])
                                                     & (cand[:, None, :] < pi[:, :, None]))
    counts = (before & is_neg[:, None, :]).sum(-1)
    ks = np.arange(pd.shape[1])
    ranks = ks[None, :] + counts
    is_pos = ks[None, :] < npos[:, None]
    ap = np.where(is_pos, (ks[None, :] + 1.0) / (ranks + 1.0), 0.0).sum(1) / npos
    last = ranks[np.arange(len(npos)), npos - 1]
    return counts[:, 0], ap, npos / (last + 1.0)


def _resolve_rows(rows: np.ndarray, f_dist: np.ndarray, f_idx: np.ndarray, eps: np.ndarray,
                  exact: ExactDistance, groups: GalleryGroups, labels, ignore_camid: bool,
                  acc: RankAccumulator, complete: bool) -> np.ndarray:
    """Fills ``acc.stats`` for rows whose candidates cover their positives; returns the others."""
    qp, gp, qc, gc = labels
    pos = SameIdentity(rows, exact, groups, qp, qc, gc, ignore_camid)
    acc.stats.num_pos[rows] = pos.npos
    valid = pos.npos > 0
    if not valid.any():
        return rows[:0]
    device = pos.dist.device
    rows_t = torch.from_numpy(rows).to(device)
    cand_t = torch.from_numpy(f_idx).to(device)
    values = torch.from_numpy(f_dist).to(device, torch.float64)
    # Spot check of faiss's error on the first and last candidates: an error above the
    # bound (e.g. reduced-precision GPU math) voids the completeness argument.
    ends = cand_t[:, [0, -1]]
    within = ((exact.pairs(rows_t.unsqueeze(1), ends) - values[:, [0, -1]]).abs().max(1).values
              <= torch.from_numpy(eps).to(device)).cpu().numpy()
    if not within.all():
        logger.warning("faiss distances deviate more than the float32 bound; %d queries fall back.",
                       int((~within).sum()))
    pos.refine(values, cand_t, rows_t, torch.from_numpy(eps).to(device).unsqueeze(1), exact)
    safe = np.full(len(rows), np.inf) if complete else f_dist[:, -1] - eps
    hardest = torch.where(torch.from_numpy(pos.pos).to(device), pos.dist, -float("inf")).max(1).values
    resolved = valid & within & (hardest.cpu().numpy() < safe)
    if resolved.any():
        r = resolved
        pd = np.where(pos.pos[r], pos.dist.cpu().numpy()[r], np.inf)
        pi = np.where(pos.pos[r], pos.memb[r], np.iinfo(np.int64).max)
        order = np.lexsort((pi, pd), axis=-1)
        first, ap, inp = _count_ranks(values.cpu().numpy()[r], f_idx[r], gp[f_idx[r]] != qp[rows[r]][:, None],
                                      np.take_along_axis(pd, order, 1), np.take_along_axis(pi, order, 1),
                                      pos.npos[r])
        acc.stats.first_rank[rows[r]], acc.stats.ap[rows[r]], acc.stats.inp[rows[r]] = first, ap, inp
    return rows[valid & ~resolved]


def evaluate_rank_faiss(
    query: torch.Tensor,
    gallery: torch.Tensor,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    metric: str = "cosine",
    max_rank: int = 50,
    topk: int = 100,
    use_gpu: bool = True,
    use_cython: bool = True,
    ignore_camid: bool = False,
    chunk_size: int = 1024,
    return_num_fallback: bool = False,
):
    """CMC, AP and INP from features via a faiss top-k search, exact (see module docstring).

    Args:
        query: (Q, D) features.
        gallery: (G, D) features.
        q_pids, q_camids: (Q,) query identities and cameras.
        g_pids, g_camids: (G,) gallery identities and cameras.
        metric: ``"cosine"`` or ``"euclidean"``.
        max_rank: length of the CMC curve (capped at G).
        topk: neighbours searched per query (raised to ``max_rank``; capped at G). Larger
            values resolve more queries from the search, fewer fall back to a full row.
        use_gpu: GPU faiss index when faiss-gpu and CUDA exist; False forces the CPU index.
        use_cython: compiled ranker for the fallback rows.
        ignore_camid: do not remove same-camera items of the query identity.
        chunk_size: queries per faiss search.
        return_num_fallback: also return how many valid queries needed a full row.

    Returns:
        ``(cmc, all_AP, all_INP)`` as :func:`~fastreid.evaluation.rank.evaluate_rank`,
        plus the fallback count when ``return_num_fallback``.
    """
    if metric not in METRICS:
        raise ValueError(f"Unknown distance metric {metric!r}; expected one of {METRICS}.")
    acc = RankAccumulator(q_pids, g_pids, q_camids, g_camids, use_cython=use_cython, ignore_camid=ignore_camid)
    labels = qp, gp, qc, gc = acc.q_pids, acc.g_pids, acc.q_camids, acc.g_camids
    num_g = gallery.shape[0]
    k = min(max(topk, max_rank), num_g)
    index = index_gallery(gallery, metric, use_gpu)
    exact = ExactDistance(query, gallery, metric)
    groups = GalleryGroups(gp)
    eps = error_bound(exact)
    q_search = prepare_features(query, metric).float().cpu().numpy()
    fallback = []
    for start in range(0, len(qp), chunk_size):
        f_dist, f_idx = index.search(np.ascontiguousarray(q_search[start:start + chunk_size]), k)
        f_dist = METRIC_TABLE[metric].to_distance(f_dist)
        for s in range(0, len(f_idx), _RECHECK_ROWS):
            rows = np.arange(start + s, start + min(s + _RECHECK_ROWS, len(f_idx)))
            fallback.extend(_resolve_rows(rows, f_dist[s:s + len(rows)], f_idx[s:s + len(rows)], eps[rows],
                                          exact, groups, labels, ignore_camid, acc, k == num_g))
    fallback = np.asarray(fallback, np.int64)
    if len(fallback):
        rank_screened(fallback, eps, exact, groups, acc, use_cython)
    logger.info("faiss ranking: %d of %d queries resolved from the top-%d search, %d fell back to full rows.",
                len(qp) - len(fallback), len(qp), k, len(fallback))
    result = acc.finalize(max_rank)
    return (*result, len(fallback)) if return_num_fallback else result
