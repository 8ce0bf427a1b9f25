"""Verification ROC over query-gallery pairs: TPR at fixed FPRs.

Pairs follow the ranking protocol (same identity AND camera pairs are removed unless
cameras are ignored). A pair is accepted when its distance is below a threshold; positives
are same-identity pairs. For a target FPR ``f`` with ``n`` negative pairs, the threshold is
the ``(floor(f * n) + 1)``-th smallest negative distance and pairs strictly below it are
accepted, so at most ``floor(f * n)`` negatives pass; TPR is the accepted fraction of
positives. Only the smallest ``floor(max(f) * n) + 1`` negative distances are kept, so the
pass streams over distance chunks in bounded memory.
"""
from typing import Dict, Sequence

import numpy as np
import torch

__all__ = ["RocAccumulator", "evaluate_roc", "DEFAULT_FPRS"]

DEFAULT_FPRS = (1e-4, 1e-3, 1e-2)


class RocAccumulator:
    """Collects positive distances and the smallest negative distances chunk by chunk.

    Args:
        q_pids, q_camids: (Q,) query labels.
        g_pids, g_camids: (G,) gallery labels.
        fprs: target false positive rates.
        ignore_camid: keep same-camera pairs of the same identity.
    """

    def __init__(self, q_pids, g_pids, q_camids, g_camids, fprs: Sequence[float] = DEFAULT_FPRS,
                 ignore_camid: bool = False):
        self.q_pids, self.g_pids = torch.as_tensor(np.asarray(q_pids)), torch.as_tensor(np.asarray(g_pids))
        self.q_camids, self.g_camids = torch.as_tensor(np.asarray(q_camids)), torch.as_tensor(np.asarray(g_camids))
        self.fprs = tuple(fprs)
        self.ignore_camid = ignore_camid
        g_ids, g_counts = np.unique(np.asarray(g_pids), return_counts=True)
        slot = np.searchsorted(g_ids, np.asarray(q_pids)).clip(max=len(g_ids) - 1)
        same_count = np.where(g_ids[slot] == np.asarray(q_pids), g_counts[slot], 0).sum()
        self.num_neg = len(self.q_pids) * len(self.g_pids) - int(same_count)
        self.keep = int(max(self.fprs) * self.num_neg) + 1
        self._pos, self._neg = [], torch.empty(0, dtype=torch.float64)

    def add(self, dist, offset: int) -> None:
        """Adds a (c, G) distance chunk of queries ``offset : offset + c``."""
        dist = torch.as_tensor(dist).detach().cpu().double()
        sl = slice(offset, offset + dist.shape[0])
        same = self.q_pids[sl, None] == self.g_pids[None, :]
        pos = same if self.ignore_camid else same & (self.q_camids[sl, None] != self.g_camids[None, :])
        self._pos.append(dist[pos])
        neg = dist[~same]
        k = min(self.keep, neg.numel())
        merged = torch.cat([self._neg, neg.topk(k, largest=False).values])
        self._neg = merged.topk(min(self.keep, merged.numel()), largest=False).values

    def finalize(self) -> Dict[str, float]:
        """Returns {"TPR@FPR=1e-04": tpr, ...} (fractions in [0, 1])."""
        pos = torch.cat(self._pos) if self._pos else torch.empty(0, dtype=torch.float64)
        neg = torch.sort(self._neg).values
        out = {}
        for f in self.fprs:
            m = int(f * self.num_neg)
            thr = neg[m] if m < neg.numel() else torch.tensor(float("inf"), dtype=torch.float64)
            out[f"TPR@FPR={f:.0e}"] = float((pos < thr).double().mean()) if pos.numel() else float("nan")
        return out


def evaluate_roc(distmat, q_pids, g_pids, q_camids, g_camids, fprs: Sequence[float] = DEFAULT_FPRS,
                 ignore_camid: bool = False) -> Dict[str, float]:
    """TPR at the given FPRs for a (Q, G) distance matrix (see the module docstring).

    Returns:
        dict mapping ``"TPR@FPR=1e-04"``-style keys to TPR in [0, 1].
    """
    acc = RocAccumulator(q_pids, g_pids, q_camids, g_camids, fprs, ignore_camid)
    acc.add(distmat, 0)
    return acc.finalize()
