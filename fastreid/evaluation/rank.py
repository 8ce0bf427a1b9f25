"""CMC, mAP and mINP under the standard re-id protocol, without sorting the gallery.

Protocol (Market-1501 style, as fast-reid's ``evaluate_rank`` and torchreid's
``eval_market1501``):

* Gallery items with the query's identity AND camera are removed (unless
  ``ignore_camid``). Nothing else is special-cased: a gallery ``pid`` of -1 is simply a
  non-match (datasets drop junk images when loading).
* Gallery items are ordered by ``(distance, gallery index)``: a stable sort by distance,
  ties broken by the lower gallery index. Both implementations use exactly this order.
* A query with no remaining positive is skipped (counted and logged).
* With ``r_k`` the 0-based rank of the k-th positive among the kept items and ``m`` the
  number of positives: ``AP = mean_k (k + 1) / (r_k + 1)``, ``INP = m / (r_{m-1} + 1)``,
  and the query's CMC is 1 from rank ``r_0`` onward. Overall CMC is the mean over valid
  queries.

Only the ranks of the positives are needed, so no full ``argsort`` is done: the rank of
a positive is the number of kept negatives ordered before it. Negatives farther than
the hardest positive are rejected by one comparison; the rest are binary-searched
(Cython) or sorted together with the positives (vectorised torch/NumPy path).
"""
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Optional, Tuple, Union

import numpy as np
import torch

logger = logging.getLogger(__name__)

try:
    from fastreid.evaluation.rank_cylib import rank_cy as _rank_cy
except ImportError:  # pragma: no cover - depends on the build
    _rank_cy = None

ArrayLike = Union[np.ndarray, torch.Tensor]

__all__ = ["GalleryGroups", "RankStats", "RankAccumulator", "compiled_ranker", "evaluate_rank",
           "is_cython_available"]

# Rows of the distance matrix handled at once by the vectorised path (bounds the
# boolean candidate mask to chunk * G bytes).
_DEFAULT_CHUNK = 1024


def compiled_ranker() -> Optional[ModuleType]:
    """The compiled kernels (``fastreid.evaluation.rank_cylib.rank_cy``), or None if they were not built.

    Besides the ranker (``rank_positives``) the module holds the exact pair dot products of
    :mod:`~fastreid.evaluation.exact_rank` (``pair_dots``) and the sparse Jaccard sum of
    :mod:`~fastreid.evaluation.rerank` (``jaccard_min_sum``); each caller has a Python twin giving
    the same numbers.
    """
    return _rank_cy


def is_cython_available() -> bool:
    """Whether the compiled ranker was built."""
    return _rank_cy is not None


def _to_int64(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(x), dtype=np.int64)


@dataclass
class RankStats:
    """Per-query ranking statistics (all arrays have length Q).

    Attributes:
        first_rank: 0-based rank of the first positive.
        ap: average precision.
        inp: inverse negative penalty.
        num_pos: number of positives kept by the protocol; 0 marks an invalid query.
    """

    first_rank: np.ndarray
    ap: np.ndarray
    inp: np.ndarray
    num_pos: np.ndarray

    @classmethod
    def empty(cls, num_q: int) -> "RankStats":
        return cls(
            np.zeros(num_q, np.int64), np.zeros(num_q, np.float64),
            np.zeros(num_q, np.float64), np.zeros(num_q, np.int64),
        )

    @property
    def valid(self) -> np.ndarray:
        return self.num_pos > 0


class GalleryGroups:
    """Gallery indices grouped by identity, to list a query's same-identity items.

    Args:
        g_pids: (G,) int64 gallery identities.
    """

    def __init__(self, g_pids: np.ndarray):
        self.order = np.argsort(g_pids, kind="stable")
        self.pids, self.starts, self.counts = np.unique(
            g_pids[self.order], return_index=True, return_counts=True)

    def members(self, pids: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Gallery items of each identity in ``pids``.

        Args:
            pids: (n,) identities.

        Returns:
            (n, M) gallery indices (padded with 0; M is the largest group, at least 1) and the
            (n, M) bool mask of the real entries.
        """
        slot = np.searchsorted(self.pids, pids).clip(max=len(self.pids) - 1)
        found = self.pids[slot] == pids
        counts = np.where(found, self.counts[slot], 0)
        width = max(int(counts.max(initial=0)), 1)
        offs = np.arange(width)
        mask = offs[None, :] < counts[:, None]
        pos = (self.starts[slot][:, None] + offs[None, :]).clip(max=len(self.order) - 1)
        return np.where(mask, self.order[pos], 0), mask


def _rank_chunk_vectorised(dist: torch.Tensor, q_pids, q_camids, g_camids, groups: GalleryGroups,
                           ignore_camid: bool, out: RankStats, offset: int) -> None:
    num_q = dist.shape[0]
    memb, in_grp = groups.members(q_pids)
    pos_m = in_grp if ignore_camid else in_grp & (g_camids[memb] != q_camids[:, None])
    npos = pos_m.sum(1)
    out.num_pos[offset:offset + num_q] = npos
    if not npos.any():
        return
    memb_t = torch.from_numpy(memb).to(dist.device)
    d_memb = dist.gather(1, memb_t).double().cpu().numpy()
    # Hardest positive per query by (distance, index); rows without positives get -inf.
    d_pos = np.where(pos_m, d_memb, -np.inf)
    tmax = d_pos.max(1)
    imax = np.where(pos_m & (d_pos == tmax[:, None]), memb, -1).max(1)

    cand = dist <= torch.from_numpy(tmax).to(dist.device, dist.dtype)[:, None]
    rows = np.broadcast_to(np.arange(num_q)[:, None], memb.shape)
    cand[torch.from_numpy(rows[in_grp]), torch.from_numpy(memb[in_grp])] = False
    qi, gj = (t.cpu().numpy() for t in cand.nonzero(as_tuple=True))
    dn = dist[torch.from_numpy(qi), torch.from_numpy(gj)].double().cpu().numpy()
    keep = (dn < tmax[qi]) | (gj <= imax[qi])
    qi, gj, dn = qi[keep], gj[keep], dn[keep]

    # Positives of each row sorted by (distance, index), padded at the end.
    pad_i = np.iinfo(np.int64).max
    pd = np.where(pos_m, d_memb, np.inf)
    pi = np.where(pos_m, memb, pad_i)
    order = np.lexsort((pi, pd), axis=-1)
    pd, pi = np.take_along_axis(pd, order, 1), np.take_along_axis(pi, order, 1)
    # Vectorised binary search: bucket = number of positives ordered before the negative.
    lo, hi = np.zeros(len(qi), np.int64), npos[qi].astype(np.int64)
    active = lo < hi
    while active.any():
        mid = (lo + hi) >> 1
        mid_c = np.minimum(mid, pd.shape[1] - 1)
        md, mi = pd[qi, mid_c], pi[qi, mid_c]
        less = (md < dn) | ((md == dn) & (mi < gj))
        lo = np.where(active & less, mid + 1, lo)
        hi = np.where(active & ~less, mid, hi)
        active = lo < hi
    width = pd.shape[1]
    counts = np.bincount(qi * (width + 1) + lo, minlength=num_q * (width + 1)).reshape(num_q, width + 1)
    ks = np.arange(width)
    ranks = ks[None, :] + np.cumsum(counts, axis=1)[:, :width]
    is_pos = ks[None, :] < npos[:, None]
    valid = npos > 0
    ap = np.where(is_pos, (ks[None, :] + 1.0) / (ranks + 1.0), 0.0).sum(1)
    last = ranks[np.arange(num_q), np.maximum(npos - 1, 0)]
    sl = slice(offset, offset + num_q)
    out.ap[sl][valid] = ap[valid] / npos[valid]
    out.inp[sl][valid] = npos[valid] / (last[valid] + 1.0)
    out.first_rank[sl][valid] = counts[valid, 0]


def _rank_chunk_cython(dist: np.ndarray, q_pids, g_pids, q_camids, g_camids, ignore_camid: bool,
                       out: RankStats, offset: int, num_threads: int) -> None:
    if dist.dtype not in (np.float32, np.float64):
        dist = dist.astype(np.float32)
    dist = np.ascontiguousarray(dist)
    num_q = dist.shape[0]
    bounds = np.linspace(0, num_q, num_threads + 1).astype(int)

    def run(a: int, b: int) -> None:
        sl = slice(offset + a, offset + b)
        _rank_cy.rank_positives(dist[a:b], q_pids[a:b], g_pids, q_camids[a:b], g_camids, ignore_camid,
                                out.first_rank[sl], out.ap[sl], out.inp[sl], out.num_pos[sl])

    if num_threads == 1 or num_q < 2 * num_threads:
        run(0, num_q)
        return
    with ThreadPoolExecutor(num_threads) as pool:
        list(pool.map(run, bounds[:-1], bounds[1:]))


def _cuhk03_first_ranks(dist: np.ndarray, q_pids, q_camids, g_pids, g_camids, ignore_camid: bool,
                        draws: np.ndarray) -> np.ndarray:
    """First-positive rank under single-gallery-shot sampling, (Q, R), -1 if invalid.

    In repeat ``r`` each identity is represented by its kept gallery item with the largest
    ``draws[r]``; the sampling is shared by all queries of a repeat (the classic protocol's
    gallery trials) and is identical for both ranker implementations.
    """
    upids, pid_idx = np.unique(g_pids, return_inverse=True)
    num_r = draws.shape[0]
    # Representative of every identity in every repeat: lexsort by (pid, draw) and take
    # the last item of each pid block.
    chosen = np.empty((num_r, len(upids)), np.int64)
    for r in range(num_r):
        order = np.lexsort((draws[r], pid_idx))
        last = np.r_[pid_idx[order][1:] != pid_idx[order][:-1], True]
        chosen[r] = order[last]
    out = np.full((dist.shape[0], num_r), -1, np.int64)
    for q in range(dist.shape[0]):
        keep = g_pids == q_pids[q]
        if not ignore_camid:
            keep &= g_camids != q_camids[q]
        pos = np.flatnonzero(keep)
        if len(pos) == 0:
            continue
        p_slot = np.searchsorted(upids, q_pids[q])
        pc = pos[np.argmax(draws[:, pos], axis=1)]
        dc, dp = dist[q][chosen], dist[q][pc][:, None]
        before = (dc < dp) | ((dc == dp) & (chosen < pc[:, None]))
        before[:, p_slot] = False
        out[q] = before.sum(1)
    return out


class RankAccumulator:
    """Accumulates ranking statistics over row chunks of a (Q, G) distance matrix.

    Lets callers stream distances (computed chunk by chunk) without holding the matrix.

    Args:
        q_pids, q_camids: (Q,) query labels.
        g_pids, g_camids: (G,) gallery labels.
        use_cython: use the compiled ranker (falls back to the vectorised path with a
            warning if it was not built; both give identical numbers).
        ignore_camid: keep same-camera items of the query identity (datasets without
            camera ids).
        use_metric_cuhk03: also collect CUHK03 single-gallery-shot first ranks.
        num_repeats, seed: CUHK03 sampling repeats and seed.
    """

    def __init__(self, q_pids: ArrayLike, g_pids: ArrayLike, q_camids: ArrayLike, g_camids: ArrayLike,
                 use_cython: bool = True, ignore_camid: bool = False, use_metric_cuhk03: bool = False,
                 num_repeats: int = 10, seed: int = 0):
        self.q_pids, self.g_pids = _to_int64(q_pids), _to_int64(g_pids)
        self.q_camids, self.g_camids = _to_int64(q_camids), _to_int64(g_camids)
        if use_cython and _rank_cy is None:
            logger.warning("Compiled ranker unavailable; using the vectorised path (same numbers).")
            use_cython = False
        self.use_cython = use_cython
        self.ignore_camid = ignore_camid
        self.stats = RankStats.empty(len(self.q_pids))
        self._groups = None if use_cython else GalleryGroups(self.g_pids)
        self._num_threads = max(1, torch.get_num_threads())
        self._cuhk_draws = None
        self._cuhk_first = None
        if use_metric_cuhk03:
            rng = np.random.default_rng(seed)
            self._cuhk_draws = rng.random((num_repeats, len(self.g_pids)))
            self._cuhk_first = np.full((len(self.q_pids), num_repeats), -1, np.int64)

    def add(self, dist: ArrayLike, offset: int) -> None:
        """Adds distances of queries ``offset : offset + len(dist)``; dist is (c, G)."""
        c = dist.shape[0]
        sl = slice(offset, offset + c)
        qp, qc = self.q_pids[sl], self.q_camids[sl]
        if self.use_cython:
            d_np = dist.detach().cpu().numpy() if isinstance(dist, torch.Tensor) else np.asarray(dist)
            _rank_chunk_cython(d_np, qp, self.g_pids, qc, self.g_camids, self.ignore_camid,
                               self.stats, offset, self._num_threads)
        else:
            d_t = dist if isinstance(dist, torch.Tensor) else torch.from_numpy(np.asarray(dist))
            if not d_t.is_floating_point() or d_t.dtype in (torch.float16, torch.bfloat16):
                d_t = d_t.float()
            _rank_chunk_vectorised(d_t, qp, qc, self.g_camids, self._groups, self.ignore_camid,
                                   self.stats, offset)
        if self._cuhk_draws is not None:
            d_np = dist.detach().cpu().numpy() if isinstance(dist, torch.Tensor) else np.asarray(dist)
            self._cuhk_first[sl] = _cuhk03_first_ranks(d_np, qp, qc, self.g_pids, self.g_camids,
                                                        self.ignore_camid, self._cuhk_draws)

    def finalize(self, max_rank: int = 50) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Returns (cmc (max_rank,), AP of valid queries, INP of valid queries)."""
        valid = self.stats.valid
        num_valid = int(valid.sum())
        num_invalid = len(valid) - num_valid
        if num_invalid:
            hint = ""
            if not self.ignore_camid and np.isin(self.q_camids, self.g_camids).all():
                hint = (" Query and gallery share cameras: same-identity same-camera items are"
                        " removed; set ignore_camid for datasets without real camera ids.")
            logger.warning("%d of %d queries have no valid gallery match and are skipped.%s",
                           num_invalid, len(valid), hint)
        if num_valid == 0:
            raise RuntimeError("No query has a valid gallery match; cannot compute CMC/mAP.")
        max_rank = min(max_rank, len(self.g_pids))
        ranks = np.arange(max_rank)
        if self._cuhk_first is not None:
            first = self._cuhk_first[valid]
            cmc = (first[:, :, None] <= ranks).mean(1).sum(0) / num_valid
        else:
            cmc = np.bincount(self.stats.first_rank[valid], minlength=len(self.g_pids))[:max_rank]
            cmc = np.cumsum(cmc) / num_valid
        return cmc, self.stats.ap[valid].copy(), self.stats.inp[valid].copy()


def evaluate_rank(
    distmat: ArrayLike,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    max_rank: int = 50,
    use_metric_cuhk03: bool = False,
    use_cython: bool = True,
    ignore_camid: bool = False,
    chunk_size: Optional[int] = None,
    num_repeats: int = 10,
    seed: int = 0,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluates CMC, AP and INP on a distance matrix (see the module docstring).

    Args:
        distmat: (Q, G) distances (NumPy or torch, any device).
        q_pids, q_camids: (Q,) query identities and cameras.
        g_pids, g_camids: (G,) gallery identities and cameras.
        max_rank: length of the CMC curve (capped at G).
        use_metric_cuhk03: CMC from single-gallery-shot sampling (``num_repeats`` seeded
            repeats); AP and INP still use the whole gallery, as in the classic protocol.
        use_cython: compiled ranker; otherwise the vectorised torch/NumPy path.
        ignore_camid: do not remove same-camera items of the query identity.
        chunk_size: query rows per chunk (bounds temporary memory of the vectorised path).
        num_repeats, seed: CUHK03 sampling.

    Returns:
        cmc: (max_rank,) float64, mean over valid queries.
        all_AP: (V,) float64 average precision of the V valid queries, in query order.
        all_INP: (V,) float64 inverse negative penalty of the valid queries.
    """
    acc = RankAccumulator(q_pids, g_pids, q_camids, g_camids, use_cython=use_cython,
                          ignore_camid=ignore_camid, use_metric_cuhk03=use_metric_cuhk03,
                          num_repeats=num_repeats, seed=seed)
    num_q = distmat.shape[0]
    step = num_q if acc.use_cython and chunk_size is None else (chunk_size or _DEFAULT_CHUNK)
    for start in range(0, num_q, max(step, 1)):
        acc.add(distmat[start:start + step], start)
    return acc.finalize(max_rank)
