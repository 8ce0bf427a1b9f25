"""Top-k neighbours of every item from the upper triangle of a symmetric (N, N) score matrix.

Used by average query expansion (cosine similarities) and k-reciprocal re-ranking
(distances). Each score is computed once, in panels of rows ``a : b`` against columns
``a :`` (half the matmul of a row-by-row pass):

* row-wise, a panel gives rows ``a : b`` their top-k among the columns ``>= a``;
* column-wise, it gives every later item ``j >= b`` its scores against rows ``a : b``.
  Panels run bottom-up, so item ``j``'s own panel has already given it a k-th best score
  ``t_j``; only the few column entries at least as good as ``t_j`` are kept (a compare
  and a ``nonzero`` instead of a top-k along short columns).

A final sort by (row, score) merges each row's own top-k with its kept column entries.
"""
from typing import Callable, Optional, Tuple

import numpy as np
import torch

__all__ = ["symmetric_topk"]

# panel_fn(a, b) -> (b - a, N - a) scores of rows a:b against columns a:.
PanelFn = Callable[[int, int], torch.Tensor]
# visit(a, b, panel) sees every panel once, e.g. to reduce it further.
VisitFn = Callable[[int, int, torch.Tensor], None]


def _row_then_score_order(rows: torch.Tensor, vals: torch.Tensor, largest: bool) -> torch.Tensor:
    """Permutation sorting entries by row, then by score (best first)."""
    if vals.dtype == torch.float32:
        # One int64 key: row in the high word, an order-preserving integer image of the
        # float32 score in the low word.
        bits = vals.view(torch.int32)
        ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)
        if largest:
            ordered = ~ordered
        key = (rows << 32) | (ordered.long() + 2**31)
        if key.device.type == "cpu":  # NumPy's int64 argsort is several times faster here
            return torch.from_numpy(np.argsort(key.numpy()))
        return key.argsort()
    by_score = vals.argsort(descending=largest)
    return by_score[rows[by_score].argsort(stable=True)]


def symmetric_topk(n: int, k: int, panel_fn: PanelFn, chunk_size: int, largest: bool = True,
                   visit: Optional[VisitFn] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Top-k of every row of a symmetric (N, N) score matrix, computed panel by panel.

    Args:
        n: number of items N.
        k: neighbours kept per row (<= N).
        panel_fn: returns the (b - a, N - a) scores of rows ``a:b`` against columns ``a:``.
        chunk_size: rows per panel.
        largest: keep the largest scores (similarities) or the smallest (distances).
        visit: called with ``(a, b, panel)`` for every panel, after its top-k are taken.

    Returns:
        (N, k) scores, best first, and (N, k) int64 column indices, on the panels'
        device. Ties at the k-th score are broken arbitrarily.
    """
    starts = list(range(0, n, chunk_size))
    own_val = own_idx = cutoff = None
    hit_rows, hit_cols, hit_vals = [], [], []
    for a in reversed(starts):
        b = min(a + chunk_size, n)
        panel = panel_fn(a, b)
        if own_val is None:
            own_val = torch.empty((n, k), dtype=panel.dtype, device=panel.device)
            own_idx = torch.full((n, k), -1, dtype=torch.long, device=panel.device)
            cutoff = torch.empty(n, dtype=panel.dtype, device=panel.device)
        m = min(k, panel.shape[1])
        val, idx = panel.topk(m, dim=1, largest=largest)
        own_val[a:b, :m], own_idx[a:b, :m] = val, idx + a
        # Fewer than k own scores: every earlier score of these rows is a candidate.
        cutoff[a:b] = val[:, -1] if m == k else (float("-inf") if largest else float("inf"))
        if b < n:
            later = panel[:, b - a:]
            keep = later >= cutoff[b:] if largest else later <= cutoff[b:]
            i, j = keep.nonzero(as_tuple=True)
            hit_rows.append(j + b)
            hit_cols.append(i + a)
            hit_vals.append(later[i, j])
        if visit is not None:
            visit(a, b, panel)
    valid = own_idx.ge(0).view(-1)
    rows = torch.cat([torch.arange(n, device=own_idx.device).repeat_interleave(k)[valid]] + hit_rows)
    cols = torch.cat([own_idx.view(-1)[valid]] + hit_cols)
    vals = torch.cat([own_val.view(-1)[valid]] + hit_vals)
    del hit_rows, hit_cols, hit_vals
    order = _row_then_score_order(rows, vals, largest)
    counts = torch.bincount(rows, minlength=n)
    first = torch.cumsum(counts, 0) - counts
    pick = order[(first[:, None] + torch.arange(k, device=first.device)).view(-1)]
    return vals[pick].view(n, k), cols[pick].view(n, k)
