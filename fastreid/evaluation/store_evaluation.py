"""Re-id metrics of a query store against a gallery store, reading both in row chunks.

Neither store is loaded whole: a block of query rows is held with its (rows, G) distance block, which is
filled from gallery chunks read from the memory maps, and handed to the same
:class:`~fastreid.evaluation.RankAccumulator` the evaluator uses. The numbers are those of
:class:`~fastreid.evaluation.ReidEvaluator` with dense ranking (no AQE, re-ranking or ROC, which need the
gallery in memory), up to the last bits of float32 distances, which depend on the matmul shape.
"""
import logging
from typing import Dict, Optional, Sequence

import torch

from .distance import budget_chunk_rows, distance_block, prepare_features
from .feature_store import FeatureStore
from .rank import RankAccumulator
from .ranking import RankResult

logger = logging.getLogger(__name__)

__all__ = ["evaluate_stores", "rank_stores"]

# Gallery rows read from the memory maps per matmul: 64 MiB of 2048-d float32 features.
DEFAULT_GALLERY_CHUNK = 8192


def rank_stores(query: FeatureStore, gallery: FeatureStore, metric: str = "cosine", max_rank: int = 50,
                ignore_camid: bool = False, use_cython: bool = True, query_chunk: Optional[int] = None,
                gallery_chunk: int = DEFAULT_GALLERY_CHUNK) -> RankResult:
    """CMC, AP and INP of every query of ``query`` against ``gallery``.

    Args:
        query, gallery: finished stores with equal feature dimensions.
        metric: ``"cosine"`` or ``"euclidean"``.
        max_rank: CMC length (capped at the gallery size).
        ignore_camid: keep same-camera gallery items of the query identity.
        use_cython: compiled ranker.
        query_chunk: query rows per distance block; None picks them from a 256 MiB float32 budget.
        gallery_chunk: gallery rows read per matmul.
    """
    if query.dim != gallery.dim:
        raise ValueError(f"Query store {query.folder} has {query.dim}-d features, gallery store "
                         f"{gallery.folder} has {gallery.dim}-d ones")
    num_g = len(gallery)
    rows = query_chunk or budget_chunk_rows(len(query), num_g)
    ranker = RankAccumulator(query.pids, gallery.pids, query.camids, gallery.camids, use_cython=use_cython,
                             ignore_camid=ignore_camid)
    for q_start, q_feats in query.iter_chunks(rows):
        q = prepare_features(torch.from_numpy(q_feats), metric, inplace=True)
        dist = torch.empty((len(q), num_g), dtype=torch.float32)
        for g_start, g_feats in gallery.iter_chunks(gallery_chunk):
            g = prepare_features(torch.from_numpy(g_feats), metric, inplace=True)
            dist[:, g_start:g_start + len(g)] = distance_block(q, g, metric)
        ranker.add(dist, q_start)
    return RankResult(*ranker.finalize(max_rank))


def evaluate_stores(query: FeatureStore, gallery: FeatureStore, metric: str = "cosine",
                    ranks: Sequence[int] = (1, 5, 10), max_rank: int = 50, **kwargs) -> Dict[str, float]:
    """The results dictionary of :class:`~fastreid.evaluation.ReidEvaluator` (``Rank-k``, ``mAP``, ``mINP``,
    ``metric``, in percent) for two stores; ``kwargs`` go to :func:`rank_stores`."""
    ranked = rank_stores(query, gallery, metric, max(max_rank, *ranks), **kwargs)
    logger.info("Evaluated %d queries against %d gallery items", len(query), len(gallery))
    return ranked.summary(ranks)
