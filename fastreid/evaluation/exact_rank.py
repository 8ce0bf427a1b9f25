"""Exact (float64) ranking metrics at float32 matmul cost: a float32 screen plus re-checks.

float32 GEMM distances depend on the chunk shape in their last bits (with MKL, 47 % of the
entries of a 1024-row chunk differ from the same rows computed in 100-row chunks), so near
ties can order differently from run to run. This module gives the ranking of the float64
distances, ``evaluate_rank(compute_distance_matrix(query.double(), gallery.double(),
metric))`` up to float64 rounding, without computing them all:

* Same-identity gallery items get exact float64 distances, summed in a fixed order (the
  compiled ``pair_dots`` kernel on CPU, an elementwise product and sum otherwise) so that a
  pair gets the same bits whatever is computed alongside and identical features tie.
* Every other item keeps its float32 screen value (one matmul) unless it lies within
  ``eps = 1.05 (D + 8) 2^-24 (|q| + max|g|)^2`` of a positive's exact value — the
  worst-case float32 dot-product error — in which case it is recomputed exactly. The
  ranker compares only negatives with positives, and every negative left screened is on
  the same side of every positive as its exact value, so the ranks are exact.
"""
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Tuple

import numpy as np
import torch

from .distance import METRICS, prepare_features
from .rank import ArrayLike, GalleryGroups, RankAccumulator, compiled_ranker

logger = logging.getLogger(__name__)

__all__ = ["evaluate_rank_exact"]

# Gallery rows per block when computing norms.
_GALLERY_BLOCK = 4096
# Pairs per exact float64 block of the torch twin (bounds its (pairs, D) float64 copy).
_PAIR_BLOCK = 4096
# Elements of one (rows, G) screened block.
_SCREEN_ELEMS = 8 << 20


class ExactDistance:
    """Exact float64 distances of the features, and a float32 screen of whole rows.

    Exact values are sums in a fixed order (compiled kernel on CPU, elementwise product and
    sum otherwise), so a pair gets the same bits whatever else is computed alongside and
    identical features always tie; batched matmul does not guarantee that.
    """

    def __init__(self, query: torch.Tensor, gallery: torch.Tensor, metric: str):
        self.metric = metric
        self.gallery = gallery.float().contiguous()
        self.query64 = prepare_features(query.double(), metric).contiguous()
        self.query32 = prepare_features(query, metric).float()
        self.q_sq = self.query64.pow(2).sum(1)
        self.q_sq32 = self.query32.pow(2).sum(1)
        # Per-item factors: 1/|g| for cosine, |g|^2 for euclidean.
        scale = []
        for s in range(0, gallery.shape[0], _GALLERY_BLOCK):
            sq = self.gallery[s:s + _GALLERY_BLOCK].double().pow(2).sum(1)
            scale.append(1.0 / sq.sqrt().clamp_min(1e-12) if metric == "cosine" else sq)
        self.g_scale = torch.cat(scale)
        self.g_scale32 = self.g_scale.float()
        on_cpu = self.gallery.device.type == "cpu"
        kernels = compiled_ranker()
        self._pair_dots = getattr(kernels, "pair_dots", None) if on_cpu else None
        self._threads = max(1, torch.get_num_threads())

    def _dots(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        if self._pair_dots is None:
            out = torch.empty(rows.shape, dtype=torch.float64, device=rows.device)
            for s in range(0, len(rows), _PAIR_BLOCK):
                r, c = rows[s:s + _PAIR_BLOCK], cols[s:s + _PAIR_BLOCK]
                out[s:s + _PAIR_BLOCK] = (self.gallery[c].double() * self.query64[r]).sum(-1)
            return out
        g, q = self.gallery.numpy(), self.query64.numpy()
        r_np, c_np = rows.numpy().astype(np.int64), cols.numpy().astype(np.int64)
        out = np.empty(len(r_np), np.float64)
        bounds = np.linspace(0, len(r_np), self._threads + 1).astype(int)

        def run(a: int, b: int) -> None:
            self._pair_dots(g, q, r_np[a:b], c_np[a:b], out[a:b])

        if self._threads == 1 or len(r_np) < 1024:
            run(0, len(r_np))
        else:
            with ThreadPoolExecutor(self._threads) as pool:
                list(pool.map(run, bounds[:-1], bounds[1:]))
        return torch.from_numpy(out)

    def pairs(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Broadcastable query rows and gallery columns -> float64 distances of that shape."""
        rows, cols = torch.broadcast_tensors(rows, cols)
        dot = self._dots(rows.reshape(-1), cols.reshape(-1)).reshape(rows.shape)
        if self.metric == "cosine":
            return 1.0 - dot * self.g_scale[cols]
        return self.q_sq[rows] + self.g_scale[cols] - 2.0 * dot

    def screen(self, rows: torch.Tensor) -> torch.Tensor:
        """(r,) query rows -> (r, G) float32 distances, within ``eps`` of the exact ones."""
        # The bound assumes full float32 products: no TF32/bf16 matmul shortcuts here.
        precision = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("highest")
        try:
            dot = self.query32[rows] @ self.gallery.t()
        finally:
            torch.set_float32_matmul_precision(precision)
        if self.metric == "cosine":
            return dot.mul_(self.g_scale32).neg_().add_(1.0)
        return dot.mul_(-2.0).add_(self.g_scale32).add_(self.q_sq32[rows].unsqueeze(-1))


class SameIdentity:
    """Same-identity gallery items of a block of queries, with exact distances.

    Attributes:
        memb: (r, M) gallery indices (padded), pos: (r, M) positive mask, npos: (r,),
        dist: (r, M) exact distances, sorted: (r, M) positive distances ascending (inf pads).
    """

    def __init__(self, rows: np.ndarray, exact: ExactDistance, groups: GalleryGroups, qp, qc, gc,
                 ignore_camid: bool):
        self.memb, in_grp = groups.members(qp[rows])
        self.pos = in_grp if ignore_camid else in_grp & (gc[self.memb] != qc[rows][:, None])
        self.npos = self.pos.sum(1)
        rows_t = torch.from_numpy(rows).to(exact.query64.device)
        self.memb_t = torch.from_numpy(self.memb).to(rows_t.device)
        self.dist = exact.pairs(rows_t.unsqueeze(1), self.memb_t)
        inf = torch.full_like(self.dist, float("inf"))
        self.sorted = torch.where(torch.from_numpy(self.pos).to(rows_t.device), self.dist, inf).sort(1).values

    def refine(self, values: torch.Tensor, cols: torch.Tensor, rows_t: torch.Tensor, eps: torch.Tensor,
               exact: ExactDistance) -> None:
        """Recomputes exactly the (r, n) screened ``values`` within ``eps`` (r, 1) of a positive.

        Every other value is then on the same side of every positive as its exact value.
        """
        slot = torch.searchsorted(self.sorted, values)
        near = (values - self.sorted.gather(1, (slot - 1).clamp_(min=0))).abs_() <= eps
        near |= (self.sorted.gather(1, slot.clamp_(max=self.sorted.shape[1] - 1)) - values).abs_() <= eps
        r_idx, c_idx = near.nonzero(as_tuple=True)
        if len(r_idx):
            values[r_idx, c_idx] = exact.pairs(rows_t[r_idx], cols[r_idx, c_idx])


def error_bound(exact: ExactDistance) -> np.ndarray:
    """(Q,) worst-case error of float32 distances (the screen's or faiss's) of each query."""
    dim = exact.gallery.shape[1]
    if exact.metric == "euclidean":
        g_norm_max = float(exact.g_scale.max().sqrt())
        q_norm = exact.q_sq.sqrt().cpu().numpy()
    else:
        g_norm_max, q_norm = 1.0, np.ones(exact.query64.shape[0])
    return 1.05 * (dim + 8) * 2.0 ** -24 * (q_norm + g_norm_max) ** 2


def screened_rows(rows: np.ndarray, eps: np.ndarray, exact: ExactDistance, groups: GalleryGroups, labels,
                   ignore_camid: bool) -> torch.Tensor:
    """(r, G) float64 rows that order every negative against every positive exactly.

    Positives get exact values; a negative keeps its float32 screen value unless that is
    within ``eps`` of a positive's exact value. The ranker compares only negatives with
    positives, so its result is the one on the exact rows.
    """
    qp, _, qc, gc = labels
    pos = SameIdentity(rows, exact, groups, qp, qc, gc, ignore_camid)
    rows_t = torch.from_numpy(rows).to(pos.dist.device)
    dist = exact.screen(rows_t).double()
    cols = torch.arange(dist.shape[1], device=dist.device).expand_as(dist)
    pos.refine(dist, cols, rows_t, torch.from_numpy(eps).to(dist.device).unsqueeze(1), exact)
    dist.scatter_(1, pos.memb_t, pos.dist)  # padding slots hold item 0's exact value: harmless
    return dist


def rank_screened(rows: np.ndarray, eps: np.ndarray, exact: ExactDistance, groups: GalleryGroups,
                  acc: RankAccumulator, use_cython: bool) -> None:
    """Fills ``acc.stats`` of the given query rows from exact-ordered screened rows."""
    qp, gp, qc, gc = acc.q_pids, acc.g_pids, acc.q_camids, acc.g_camids
    sub = RankAccumulator(qp[rows], gp, qc[rows], gc, use_cython=use_cython, ignore_camid=acc.ignore_camid)
    step = max(1, _SCREEN_ELEMS // len(gp))
    for s in range(0, len(rows), step):
        block = rows[s:s + step]
        sub.add(screened_rows(block, eps[block], exact, groups, (qp, gp, qc, gc), acc.ignore_camid), s)
    for name in ("first_rank", "ap", "inp", "num_pos"):
        getattr(acc.stats, name)[rows] = getattr(sub.stats, name)


def evaluate_rank_exact(
    query: torch.Tensor,
    gallery: torch.Tensor,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    metric: str = "cosine",
    max_rank: int = 50,
    use_cython: bool = True,
    ignore_camid: bool = False,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CMC, AP and INP of the float64 distances of the features (see module docstring).

    Args:
        query: (Q, D) features.
        gallery: (G, D) features.
        q_pids, q_camids: (Q,) query identities and cameras.
        g_pids, g_camids: (G,) gallery identities and cameras.
        metric: ``"cosine"`` or ``"euclidean"``.
        max_rank: length of the CMC curve (capped at G).
        use_cython: compiled ranker.
        ignore_camid: do not remove same-camera items of the query identity.

    Returns:
        ``(cmc, all_AP, all_INP)`` as :func:`~fastreid.evaluation.rank.evaluate_rank`.
    """
    if metric not in METRICS:
        raise ValueError(f"Unknown distance metric {metric!r}; expected one of {METRICS}.")
    acc = RankAccumulator(q_pids, g_pids, q_camids, g_camids, use_cython=use_cython, ignore_camid=ignore_camid)
    exact = ExactDistance(query, gallery, metric)
    rank_screened(np.arange(len(acc.q_pids)), error_bound(exact), exact, GalleryGroups(acc.g_pids), acc,
                  use_cython)
    return acc.finalize(max_rank)
