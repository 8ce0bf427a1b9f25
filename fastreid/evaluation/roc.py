"""Verification ROC over query-gallery pairs: TPR at fixed FPRs.

Pairs follow the ranking protocol (same identity AND camera pairs are removed unless
cameras are ignored). A pair is accepted when its distance is below a threshold; positives
are same-identity pairs. For a target FPR ``f`` with ``n`` negative pairs, the threshold is
the ``(floor(f * n) + 1)``-th smallest negative distance and pairs strictly below it are
accepted, so at most ``floor(f * n)`` negatives pass; TPR is the accepted fraction of
positives.

The pass streams over row chunks of the distance matrix. Only the smallest
``k = floor(max(f) * n) + 1`` negative distances matter, so once ``k`` negatives are known
their largest bounds every later candidate: a chunk contributes only the negatives below it.
Memory is one chunk's masks plus O(k) kept negatives and the positives (O(Q x gallery images
per identity)), never a float64 copy of the matrix. Values are kept in their own precision
(float16/bfloat16 widen exactly to float32), so thresholds equal those of a one-piece sort.
"""
import math
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from .distance import budget_chunk_rows

__all__ = ["RocAccumulator", "evaluate_roc", "DEFAULT_FPRS", "DEFAULT_ROC_CHUNK_BYTES"]

DEFAULT_FPRS = (1e-4, 1e-3, 1e-2)
# Working memory of one chunk in evaluate_roc (masks and candidate copies, see _WORK_BYTES).
DEFAULT_ROC_CHUNK_BYTES = 64 * 2**20
# Bytes per chunk element while it is processed, at most: two boolean masks and, while no bound is
# known yet (first chunks), a copy of its negatives (float64 at worst).
_WORK_BYTES = 10


def _chunk_array(dist) -> np.ndarray:
    """A (c, G) chunk as a CPU float array without widening float16/32/64 (bfloat16 and integers widen exactly)."""
    if isinstance(dist, torch.Tensor):
        dist = dist.detach().cpu()
        dist = (dist.float() if dist.dtype == torch.bfloat16 else dist).numpy()
    dist = np.asarray(dist)
    return dist if np.issubdtype(dist.dtype, np.floating) else dist.astype(np.float64)


class RocAccumulator:
    """Collects positive distances and the smallest negative distances chunk by chunk.

    Chunks may come in any order and dtype; each query row must be added exactly once.

    Args:
        q_pids, q_camids: (Q,) query labels.
        g_pids, g_camids: (G,) gallery labels.
        fprs: target false positive rates, each in [0, 1].
        ignore_camid: keep same-camera pairs of the same identity.
    """

    def __init__(self, q_pids, g_pids, q_camids, g_camids, fprs: Sequence[float] = DEFAULT_FPRS,
                 ignore_camid: bool = False):
        self.fprs = tuple(float(f) for f in fprs)
        if not self.fprs or not all(0.0 <= f <= 1.0 for f in self.fprs):
            raise ValueError(f"fprs must be a non-empty sequence of rates in [0, 1]; got {tuple(fprs)}.")
        self.q_pids, self.g_pids = np.asarray(q_pids), np.asarray(g_pids)
        self.q_camids, self.g_camids = np.asarray(q_camids), np.asarray(g_camids)
        self.ignore_camid = ignore_camid
        g_ids, g_counts = np.unique(self.g_pids, return_counts=True)
        slot = np.searchsorted(g_ids, self.q_pids).clip(max=len(g_ids) - 1)
        same_count = np.where(g_ids[slot] == self.q_pids, g_counts[slot], 0).sum()
        self.num_neg = len(self.q_pids) * len(self.g_pids) - int(same_count)
        self.keep = int(max(self.fprs) * self.num_neg) + 1
        self._pos: List[np.ndarray] = []
        self._neg: List[np.ndarray] = []  # candidates; their union holds the `keep` smallest negatives
        self._num_neg_held = 0
        # An upper bound on the keep-th smallest negative (None until `keep` negatives were seen).
        self._bound: Optional[float] = None

    def add(self, dist, offset: int) -> None:
        """Adds a (c, G) distance chunk (numpy or torch, any device) of queries ``offset : offset + c``."""
        dist = _chunk_array(dist)
        num_g = len(self.g_pids)
        if dist.ndim != 2 or dist.shape[1] != num_g or not 0 <= offset <= len(self.q_pids) - dist.shape[0]:
            raise ValueError(f"ROC chunk of shape {tuple(dist.shape)} at query offset {offset} does not fit "
                             f"{len(self.q_pids)} queries x {num_g} gallery items; pass (c, {num_g}) rows of the "
                             f"distance matrix with their first query index.")
        # NumPy boolean indexing needs no index or prefix-sum buffer (torch's needs 8-16 bytes per element).
        sl = slice(offset, offset + dist.shape[0])
        same = self.q_pids[sl, None] == self.g_pids[None, :]
        if self.ignore_camid:
            self._pos.append(dist[same].astype(np.float64))
        else:
            pos = self.q_camids[sl, None] != self.g_camids[None, :]
            self._pos.append(dist[np.logical_and(pos, same, out=pos)].astype(np.float64))
            del pos
        neg = np.logical_not(same, out=same)
        bound = self._chunk_bound(dist.dtype)
        if bound is not None:
            neg &= dist < bound
        self._hold(dist[neg])

    def _chunk_bound(self, dtype: np.dtype) -> Optional[np.floating]:
        """The bound as a scalar of ``dtype``, or None when it is unknown or not exact in ``dtype``."""
        if self._bound is None or math.isnan(self._bound):
            return None
        bound = dtype.type(self._bound)
        # A bound rounded down in a narrower dtype would drop negatives that belong to the kept set.
        return bound if float(bound) == self._bound else None

    def _hold(self, cand: np.ndarray) -> None:
        """Keeps ``cand`` (a fresh array, partitioned in place) and compacts once 2 * keep are held."""
        cand = self._smallest(cand)
        self._neg.append(cand)
        self._num_neg_held += cand.size
        if self._num_neg_held > 2 * self.keep:
            merged = self._smallest(np.concatenate(self._neg))
            self._neg, self._num_neg_held = [merged], merged.size

    def _smallest(self, values: np.ndarray) -> np.ndarray:
        """The ``keep`` smallest of ``values`` (a copy, so a large input is freed); tightens the bound."""
        if values.size < self.keep:
            return values
        values.partition(self.keep - 1)
        kth = float(values[self.keep - 1])
        # A NaN k-th value means fewer than `keep` numbers here: no bound.
        if not math.isnan(kth) and (self._bound is None or kth < self._bound):
            self._bound = kth
        return values[:self.keep].copy()

    def finalize(self) -> Dict[str, float]:
        """Returns {"TPR@FPR=1e-04": tpr, ...} (fractions in [0, 1])."""
        pos = np.concatenate(self._pos) if self._pos else np.empty(0)
        neg = np.sort(np.concatenate(self._neg).astype(np.float64)) if self._neg else np.empty(0)
        out = {}
        for f in self.fprs:
            m = int(f * self.num_neg)
            thr = neg[m] if m < neg.size else np.inf
            out[f"TPR@FPR={f:.0e}"] = float((pos < thr).mean()) if pos.size else float("nan")
        return out


def evaluate_roc(distmat, q_pids, g_pids, q_camids, g_camids, fprs: Sequence[float] = DEFAULT_FPRS,
                 ignore_camid: bool = False, chunk_rows: Optional[int] = None) -> Dict[str, float]:
    """TPR at the given FPRs for a distance matrix, streamed in row chunks (see the module docstring).

    Args:
        distmat: (Q, G) distances, numpy array or torch tensor of any float dtype and device;
            it is neither copied nor converted as a whole.
        q_pids, q_camids: (Q,) query labels.
        g_pids, g_camids: (G,) gallery labels.
        fprs: target false positive rates, each in [0, 1].
        ignore_camid: keep same-camera pairs of the same identity.
        chunk_rows: query rows per chunk; default from :data:`DEFAULT_ROC_CHUNK_BYTES`. The
            result does not depend on it.

    Returns:
        dict mapping ``"TPR@FPR=1e-04"``-style keys to TPR in [0, 1].
    """
    num_q, num_g = len(q_pids), len(g_pids)
    if tuple(distmat.shape) != (num_q, num_g):
        raise ValueError(f"distmat has shape {tuple(distmat.shape)} but the labels give {num_q} queries and "
                         f"{num_g} gallery items; pass the (num_query, num_gallery) matrix.")
    if chunk_rows is not None and chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive row count or None (memory budget); got {chunk_rows}.")
    rows = chunk_rows or budget_chunk_rows(num_q, num_g, DEFAULT_ROC_CHUNK_BYTES, min_rows=1,
                                           bytes_per_element=_WORK_BYTES)
    acc = RocAccumulator(q_pids, g_pids, q_camids, g_camids, fprs, ignore_camid)
    for start in range(0, num_q, rows):
        acc.add(distmat[start:start + rows], start)
    return acc.finalize()
