"""Average query expansion (alpha-QE) as fast-reid applies it at test time.

Each feature (query and gallery alike) is replaced by
``mean_{n in topk(i)} f_n * sim(i, n) ** alpha`` over its ``qe_k`` most cosine-similar
features among all query + gallery features (itself included), repeated ``qe_times``
times. The (Q+G)^2 similarity matrix is never held: rows are processed in chunks and
only the top-k of each row is kept.
"""
from typing import Tuple

import torch
import torch.nn.functional as F

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
        chunk_size: rows per similarity matmul.

    Returns:
        Expanded (Q, D) query and (G, D) gallery features (not normalised).
    """
    num_q = query_feat.shape[0]
    feats = torch.cat([query_feat, gallery_feat]).float()
    k = min(qe_k, feats.shape[0])
    for _ in range(qe_times):
        norm = F.normalize(feats, dim=1)
        new = torch.empty_like(feats)
        for start in range(0, feats.shape[0], chunk_size):
            sims = norm[start:start + chunk_size] @ norm.t()
            top_sim, top_idx = sims.topk(k, dim=1)
            weights = top_sim.pow(alpha).unsqueeze(-1)
            new[start:start + chunk_size] = (feats[top_idx] * weights).mean(1)
        feats = new
    return feats[:num_q], feats[num_q:]
