"""Average query expansion (alpha-QE) as fast-reid applies it at test time.

Each feature (query and gallery alike) is replaced by
``mean_{n in topk(i)} f_n * sim(i, n) ** alpha`` over its ``qe_k`` most cosine-similar
features among all query + gallery features (itself included), repeated ``qe_times``
times.

The (N, N) similarity (N = Q + G) is never held, and, being symmetric, only its upper
triangle is computed (:func:`fastreid.evaluation.neighbours.symmetric_topk`), half the
matmul of a row-by-row pass. Besides the output, one working copy of the features is held
(normalised in place; raw rows are restored from the norms when averaging).
"""
from typing import Tuple

import torch

from .neighbours import symmetric_topk

__all__ = ["average_query_expansion"]


def average_query_expansion(query_feat: torch.Tensor, gallery_feat: torch.Tensor, qe_times: int = 1,
                            qe_k: int = 5, alpha: float = 3.0,
                            chunk_size: int = 1024) -> Tuple[torch.Tensor, torch.Tensor]:
    """Expands query and gallery features.

    Args:
        query_feat: (Q, D) features.
        gallery_feat: (G, D) features on the same device.
        qe_times: number of expansion rounds.
        qe_k: neighbours averaged per feature (including itself).
        alpha: exponent applied to the cosine similarity weights.
        chunk_size: rows per similarity panel.

    Returns:
        Expanded (Q, D) query and (G, D) gallery features (not normalised).
    """
    num_q = query_feat.shape[0]
    feats = torch.cat([query_feat, gallery_feat]).float()
    k = min(qe_k, feats.shape[0])
    for _ in range(qe_times):
        norms = feats.norm(p=2, dim=1, keepdim=True).clamp_min(1e-12)
        norm = feats.div_(norms)  # the working copy is owned here
        top_sim, top_idx = symmetric_topk(len(norm), k, lambda a, b: norm[a:b] @ norm[a:].t(), chunk_size)
        new = torch.empty_like(feats)
        for start in range(0, feats.shape[0], chunk_size):
            idx = top_idx[start:start + chunk_size]
            # mean_n f_n w_n = sum_n unit_n (|f_n| w_n / k): one gather and a batched matmul.
            coef = top_sim[start:start + chunk_size].pow(alpha) * norms[idx, 0] / k
            new[start:start + chunk_size] = torch.bmm(coef.unsqueeze(1), norm[idx]).squeeze(1)
        feats = new
    return feats[:num_q], feats[num_q:]
