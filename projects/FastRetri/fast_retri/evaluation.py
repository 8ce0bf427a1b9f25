"""Recall@K of image retrieval: every test image queries all the others (fast-reid's FastRetri protocol)."""
import logging
from collections import OrderedDict
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np
import torch

from fastreid.config import configurable
from fastreid.evaluation import (DatasetEvaluator, DenseRanking, FeatureCollector, RankingContext, RankingStrategy,
                                 RankLabels, build_ranking)

logger = logging.getLogger(__name__)

__all__ = ["RetrievalEvaluator", "retrieval_metrics"]


def retrieval_metrics(features: torch.Tensor, labels: np.ndarray, recalls: Sequence[int] = (1, 2, 4, 8),
                      metric: str = "cosine", ranking: Optional[RankingStrategy] = None,
                      use_cython: bool = True) -> Dict[str, float]:
    """Recall@K and mAP of each image against all the others, in percent.

    Recall@K is the share of images with an image of their class among their K nearest other images; an image
    whose class has no other image counts as a miss. mAP is over the images whose class has another image.
    Neighbours are ordered by distance, ties by index. The ranking runs through fastreid's re-id ranking with
    the features as both query and gallery and every image its own camera, so that exactly the query itself is
    left out of its gallery.

    Args:
        features: N×D features.
        labels: (N,) class labels.
        recalls: the K reported, ``Recall@K``; ``metric`` is the first.
        metric: ``"cosine"`` or ``"euclidean"`` (TEST.METRIC).
        ranking: a fastreid ranking strategy (default :class:`fastreid.evaluation.DenseRanking`; see
            :func:`fastreid.evaluation.build_ranking`, e.g. faiss for large test sets).
        use_cython: compiled ranker (same numbers).

    Raises:
        RuntimeError: no class has two images.
    """
    recalls = tuple(int(k) for k in recalls)
    if not recalls or min(recalls) < 1:
        raise ValueError(f"TEST.RECALLS must be positive integers, got {recalls}")
    labels = np.asarray(labels, dtype=np.int64)
    own = np.arange(len(labels))
    context = RankingContext(metric=metric, max_rank=max(recalls), use_cython=use_cython)
    ranked = (ranking or DenseRanking()).rank(features.clone(), features.clone(), RankLabels(labels, labels, own, own),
                                              context)
    found = len(ranked.all_ap) / len(labels)  # share of images with another image of their class
    results = OrderedDict((f"Recall@{k}", float(ranked.cmc[min(k, len(ranked.cmc)) - 1]) * found * 100)
                          for k in recalls)
    results["mAP"] = float(np.mean(ranked.all_ap)) * 100
    results["metric"] = results[f"Recall@{recalls[0]}"]
    return results


class RetrievalEvaluator(DatasetEvaluator):
    """Collects the features and class labels (``inputs["targets"]``) of a test set, each image once, and
    reports :func:`retrieval_metrics` (main process; ``{}`` elsewhere).

    Args:
        recalls: the K of ``Recall@K`` (TEST.RECALLS).
        metric: TEST.METRIC.
        ranking: ranking strategy (from a config: :func:`fastreid.evaluation.build_ranking`).
    """

    @configurable
    def __init__(self, *, recalls: Sequence[int] = (1, 2, 4, 8, 16, 32), metric: str = "cosine",
                 ranking: Optional[RankingStrategy] = None) -> None:
        self.recalls = tuple(recalls)
        self.metric = metric
        self.ranking = ranking
        self._collector = FeatureCollector()

    @classmethod
    def from_config(cls, cfg) -> Dict[str, Any]:
        return {"recalls": tuple(cfg.TEST.RECALLS), "metric": cfg.TEST.METRIC, "ranking": build_ranking(cfg)}

    def reset(self) -> None:
        self._collector.reset()

    def process(self, inputs: Mapping[str, Any], outputs: torch.Tensor) -> None:
        self._collector.process(inputs, outputs)

    def evaluate(self) -> Dict[str, float]:
        data = self._collector.collect()
        if data is None:
            return {}
        features = data["feats"].to(self._collector.device)
        return retrieval_metrics(features, data["pids"].numpy(), self.recalls, self.metric, self.ranking)
