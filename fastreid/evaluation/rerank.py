"""k-reciprocal re-ranking (Zhong et al., CVPR'17) on sparse neighbour lists.

Gives the same distances as the authors' dense code (up to float rounding):

1. ``O = d^2 / rowmax(d^2)`` over all query + gallery items, ``d`` the base distance
   (:mod:`fastreid.evaluation.distance`); rows ordered by ``(O, index)``.
2. k-reciprocal set of ``i`` in its top ``k1 + 1``; expanded by each member's
   ``round(k1 / 2)``-reciprocal set when more than 2/3 of that set is in the former.
3. ``V[i, j] = exp(-O[i, j])`` over the expanded set, normalised to sum 1; local query
   expansion averages the ``V`` rows of the ``k2`` nearest items.
4. ``jaccard = 1 - s / (2 - s)`` with ``s = sum_k min(V[q, k], V[g, k])``;
   ``final = jaccard * (1 - lambda) + O * lambda``.

Instead of dense (Q+G)^2 matrices and a full argsort, one chunked pass over the upper
triangle of the (symmetric) distances keeps each row's top ``2 (k1 + 1) + margin``
neighbours and its maximum (:func:`fastreid.evaluation.neighbours.symmetric_topk`); ``V`` is
a sparse matrix with at most a few hundred entries per row; the Jaccard term is a
sparse min-sum computed by the compiled kernel (or a NumPy twin).
"""
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Tuple

import numpy as np
import scipy.sparse as sp
import torch

from .distance import distance_block, iter_distance_chunks, pair_distance, prepare_features
from .neighbours import symmetric_topk
from .rank import compiled_ranker

logger = logging.getLogger(__name__)

__all__ = ["re_ranking", "k_reciprocal_neighbours"]

# Extra neighbours kept beyond k1 + 1 so that re-sorting by the normalised distance
# (which can create ties) still sees every tied item; rows where ties reach past the
# margin are recomputed exactly.
_MARGIN = 8


def _neighbour_pass(feats: torch.Tensor, num_query: int, metric: str, k: int,
                    chunk_size: int) -> Tuple[np.ndarray, np.ndarray, torch.Tensor, np.ndarray, np.ndarray]:
    """One pass over the upper triangle of the (N, N) distances of prepared features.

    Candidates are selected on ``|d|``, which orders like ``d^2`` (rounded squaring is
    monotone in ``|d|``); only the selected entries, the row maxima and the (Q, G) block
    are squared.

    Returns:
        top (N, k) neighbour indices ordered by (O, index), rowmax (N,) of d^2, the
        (Q, G) query-gallery block of O, and the wider candidate lists (N, kk) of
        indices and O values (reused for the weights of most expansion pairs).
    """
    n = feats.shape[0]
    kk = min(2 * k + _MARGIN, n)
    sq_norm = feats.pow(2).sum(1) if metric == "euclidean" else None
    absmax = torch.zeros(n, dtype=feats.dtype, device=feats.device)
    qg = torch.empty((num_query, n - num_query), dtype=torch.float32)

    def panel(a: int, b: int) -> torch.Tensor:
        g_sq = None if sq_norm is None else sq_norm[a:]
        return distance_block(feats[a:b], feats[a:], metric, g_sq).abs_()

    def visit(a: int, b: int, dist: torch.Tensor) -> None:
        torch.maximum(absmax[a:b], dist.amax(1), out=absmax[a:b])
        if b < n:
            torch.maximum(absmax[b:], dist[:, b - a:].amax(0), out=absmax[b:])
        if a < num_query:
            rows = min(b, num_query) - a
            qg[a:a + rows] = dist[:rows, num_query - a:].square()

    cand_abs, cand_i = symmetric_topk(n, kk, panel, chunk_size, largest=False, visit=visit)
    rowmax = absmax.square().float().cpu()
    o = (cand_abs.square().float().cpu() / rowmax[:, None]).numpy()
    cand_i = cand_i.cpu().numpy()
    order = np.lexsort((cand_i, o), axis=-1)
    o, cand_i = np.take_along_axis(o, order, 1), np.take_along_axis(cand_i, order, 1)
    top = cand_i[:, :k].copy()
    if kk < n:
        # Ties at the cut that reach the end of the candidate list: resolve exactly.
        for i in np.flatnonzero(o[:, k - 1] == o[:, -1]):
            row = next(iter_distance_chunks(feats[i:i + 1], feats, metric, 1, prepared=True))[1]
            row_o = (row.pow(2).float() / rowmax[i]).cpu().numpy()[0]
            top[i] = np.argsort(row_o, kind="stable")[:k]
    qg /= rowmax[:num_query, None]
    return top, rowmax.numpy(), qg, cand_i, o


def _pair_sq_distance(feats: torch.Tensor, rows: np.ndarray, cols: np.ndarray, metric: str,
                      chunk: int = 1 << 15) -> np.ndarray:
    """Squared base distance of the pairs (rows[i], cols[i]), gathered in bounded chunks."""
    out = np.empty(len(rows), np.float32)
    for s in range(0, len(rows), chunk):
        a = feats[torch.from_numpy(rows[s:s + chunk]).to(feats.device)]
        b = feats[torch.from_numpy(cols[s:s + chunk]).to(feats.device)]
        out[s:s + chunk] = pair_distance(a, b, metric).pow(2).float().cpu().numpy()
    return out


def _expansion_distances(feats, rows, cols, cand_i, cand_o, rowmax, metric) -> np.ndarray:
    """O[rows, cols]: taken from the candidate lists when present, else computed pairwise."""
    n = feats.shape[0]
    cand_keys = (np.arange(n)[:, None] * n + cand_i).ravel()
    sort = np.argsort(cand_keys)
    cand_keys, cand_vals = cand_keys[sort], cand_o.ravel()[sort]
    keys = rows * n + cols
    slot = np.searchsorted(cand_keys, keys).clip(max=len(cand_keys) - 1)
    found = cand_keys[slot] == keys
    o = np.where(found, cand_vals[slot], 0).astype(np.float32)
    miss = ~found
    o[miss] = _pair_sq_distance(feats, rows[miss], cols[miss], metric) / rowmax[rows[miss]]
    return o


def _reciprocal_mask(ranks: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """(N, k) mask: whether row i appears in the neighbour list of its j-th neighbour."""
    n = ranks.shape[0]
    out = np.empty(ranks.shape, bool)
    for s in range(0, n, chunk):
        ids = np.arange(s, min(s + chunk, n))
        out[ids] = (ranks[ranks[ids]] == ids[:, None, None]).any(-1)
    return out


def k_reciprocal_neighbours(top: np.ndarray, k1: int, chunk: int = 2048) -> sp.csr_matrix:
    """Expanded k-reciprocal sets as a boolean (N, N) CSR pattern.

    Args:
        top: (N, >= k1 + 1) neighbour indices ordered by distance.
        k1: neighbourhood size.
    """
    n = top.shape[0]
    full = top[:, :k1 + 1]
    half = int(np.around(k1 / 2.0))
    small = top[:, :half + 1]
    recip = _reciprocal_mask(full)
    small_recip = _reciprocal_mask(small)
    small_size = small_recip.sum(1)
    rows, cols = [], []
    for s in range(0, n, chunk):
        ids = np.arange(s, min(s + chunk, n))
        f, r = full[ids], recip[ids]
        cand_sets = small[f]  # (c, k1 + 1, half + 1)
        cand_mask = small_recip[f]
        in_recip = ((cand_sets[..., None] == f[:, None, None, :]) & r[:, None, None, :]).any(-1)
        overlap = (in_recip & cand_mask).sum(-1)
        accept = r & (overlap > 2.0 / 3 * small_size[f])
        ri, rj = np.nonzero(r)
        rows.append(ids[ri])
        cols.append(f[ri, rj])
        ai, aj, ab = np.nonzero(accept[..., None] & cand_mask)
        rows.append(ids[ai])
        cols.append(cand_sets[ai, aj, ab])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    pattern = sp.csr_matrix((np.ones(len(rows), bool), (rows, cols)), shape=(n, n))
    pattern.sum_duplicates()
    pattern.sort_indices()
    return pattern


def _jaccard_min_sum(vq: sp.csr_matrix, vg_csc: sp.csc_matrix, num_threads: int) -> np.ndarray:
    out = np.zeros((vq.shape[0], vg_csc.shape[0]), np.float32)
    q_ptr, q_ind = vq.indptr.astype(np.int64), vq.indices.astype(np.int64)
    c_ptr, c_rows = vg_csc.indptr.astype(np.int64), vg_csc.indices.astype(np.int64)
    q_data, c_data = vq.data.astype(np.float32), vg_csc.data.astype(np.float32)
    kernels = compiled_ranker()
    if kernels is None:
        for q in range(vq.shape[0]):
            for a in range(q_ptr[q], q_ptr[q + 1]):
                k = q_ind[a]
                rows = c_rows[c_ptr[k]:c_ptr[k + 1]]
                out[q, rows] += np.minimum(q_data[a], c_data[c_ptr[k]:c_ptr[k + 1]])
        return out
    bounds = np.linspace(0, vq.shape[0], num_threads + 1).astype(int)

    def run(a: int, b: int) -> None:
        if b > a:
            ptr = q_ptr[a:b + 1]
            kernels.jaccard_min_sum(ptr - ptr[0], q_ind[ptr[0]:ptr[-1]], q_data[ptr[0]:ptr[-1]],
                                    c_ptr, c_rows, c_data, out[a:b])

    with ThreadPoolExecutor(num_threads) as pool:
        list(pool.map(run, bounds[:-1], bounds[1:]))
    return out


def re_ranking(query_feat: torch.Tensor, gallery_feat: torch.Tensor, metric: str = "euclidean",
               k1: int = 20, k2: int = 6, lambda_value: float = 0.3, chunk_size: int = 1024) -> torch.Tensor:
    """k-reciprocal re-ranked query-gallery distances.

    Args:
        query_feat: (Q, D) features.
        gallery_feat: (G, D) features on the same device.
        metric: base distance (``"cosine"`` or ``"euclidean"``), as for evaluation.
        k1, k2, lambda_value: re-ranking parameters (TEST.RERANK.K1, K2, LAMBDA).
        chunk_size: rows per distance matmul.

    Returns:
        (Q, G) float32 CPU tensor of re-ranked distances.
    """
    num_q = query_feat.shape[0]
    feats = prepare_features(torch.cat([query_feat, gallery_feat]), metric)
    n = feats.shape[0]
    k = min(k1 + 1, n)
    top, rowmax, final, cand_i, cand_o = _neighbour_pass(feats, num_q, metric, max(k, k2), chunk_size)
    pattern = k_reciprocal_neighbours(top, k1)
    rows = np.repeat(np.arange(n), np.diff(pattern.indptr))
    cols = pattern.indices
    o = _expansion_distances(feats, rows, cols.astype(np.int64), cand_i, cand_o, rowmax, metric)
    w = np.exp(-o).astype(np.float32)
    w /= np.add.reduceat(w, pattern.indptr[:-1])[rows]
    v = sp.csr_matrix((w, cols, pattern.indptr), shape=(n, n))
    if k2 != 1:
        qe_rows = np.repeat(np.arange(n), k2)
        qe = sp.csr_matrix((np.full(n * k2, 1.0 / k2, np.float32), (qe_rows, top[:, :k2].ravel())), shape=(n, n))
        v = (qe @ v).tocsr()
        v.sort_indices()
    vq = v[:num_q]
    vg_csc = v[num_q:].tocsc()
    vg_csc.sort_indices()
    final *= lambda_value
    # Query-row chunks: only one chunk of the Jaccard term and its temporaries is held.
    for a in range(0, num_q, chunk_size):
        s = _jaccard_min_sum(vq[a:a + chunk_size], vg_csc, max(1, torch.get_num_threads()))
        jaccard = 1 - s / (2.0 - s)
        final[a:a + chunk_size] += torch.from_numpy(jaccard * (1 - lambda_value))
    return final
