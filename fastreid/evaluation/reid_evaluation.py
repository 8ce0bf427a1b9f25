"""Re-id evaluator: query/gallery features -> CMC, mAP, mINP (and optional ROC)."""
import logging
from typing import Any, Dict, Mapping, Optional, Sequence

import torch

from fastreid.config import configurable

from .evaluator import DatasetEvaluator
from .feature_collector import FeatureCollector
from .options import AQEOptions
from .query_expansion import average_query_expansion
from .ranking import DenseRanking, RankingContext, RankingStrategy, RankLabels, build_ranking

logger = logging.getLogger(__name__)

__all__ = ["ReidEvaluator"]


class ReidEvaluator(DatasetEvaluator):
    """Evaluates features of a test set laid out as ``num_query`` queries then the gallery.

    Collects features with a :class:`~fastreid.evaluation.FeatureCollector` (which restores the
    dataset order under DDP), applies average query expansion when enabled and ranks with a
    :class:`~fastreid.evaluation.RankingStrategy`.

    Results (main process; ``{}`` elsewhere), in percent: ``Rank-k`` for each k of ``ranks``
    (``Rank-1``, ``Rank-5``, ``Rank-10`` by default), ``mAP``, ``mINP``, ``metric`` = (mAP + Rank-1) / 2, and when the strategy
    computes the ROC ``TPR@FPR=1e-04``, ``TPR@FPR=1e-03``, ``TPR@FPR=1e-02``.
    """

    @configurable
    def __init__(self, num_query: int, *, metric: str = "cosine", ranking: Optional[RankingStrategy] = None,
                 aqe: AQEOptions = AQEOptions(), ignore_camid: bool = False, use_cython: bool = True,
                 max_rank: int = 50, chunk_size: Optional[int] = None, output_dir: Optional[str] = None,
                 ranks: Sequence[int] = (1, 5, 10), use_metric_cuhk03: bool = False):
        """
        Args:
            num_query: the first ``num_query`` samples are queries, the rest gallery.
            metric: ``"cosine"`` or ``"euclidean"`` (TEST.METRIC).
            ranking: the ranking strategy; ``None`` is :class:`~fastreid.evaluation.DenseRanking`
                without re-ranking and ROC. From a config: :func:`~fastreid.evaluation.build_ranking`.
            aqe: average query expansion (TEST.AQE).
            ignore_camid: keep same-camera gallery items of the query identity.
            use_cython: compiled ranker (identical numbers to the vectorised path).
            max_rank: CMC length.
            chunk_size: query rows per distance chunk (bounds memory); ``None`` picks them
                from a 256 MiB float32 budget (all Market-1501 queries at once, ~800 rows
                of an MSMT17 gallery), and leaves AQE, re-ranking and faiss their own size.
            output_dir: where evaluation artefacts may be written (unused by the metrics).
            ranks: the CMC ranks reported (``max_rank`` is raised to the largest).
            use_metric_cuhk03: CUHK03's single-gallery-shot CMC (see
                :class:`~fastreid.evaluation.RankingContext`).
        """
        self.ranks = tuple(int(r) for r in ranks)
        if not self.ranks or min(self.ranks) < 1:
            raise ValueError(f"ranks must be positive integers, got {ranks}")
        self.num_query = num_query
        self.ranking = DenseRanking() if ranking is None else ranking
        self.aqe = aqe
        self.context = RankingContext(metric=metric, max_rank=max(max_rank, *self.ranks), ignore_camid=ignore_camid,
                                      use_cython=use_cython, chunk_size=chunk_size,
                                      use_metric_cuhk03=use_metric_cuhk03)
        self.output_dir = output_dir
        self._collector = FeatureCollector()

    @classmethod
    def from_config(cls, cfg, num_query: int, output_dir: Optional[str] = None,
                    ranking: Optional[RankingStrategy] = None) -> Dict[str, Any]:
        return {
            "num_query": num_query,
            "output_dir": output_dir,
            "metric": cfg.TEST.METRIC,
            "ranking": build_ranking(cfg) if ranking is None else ranking,
            "aqe": AQEOptions.from_config(cfg),
        }

    @property
    def metric(self) -> str:
        """The distance metric (``self.context.metric``)."""
        return self.context.metric

    def reset(self) -> None:
        self._collector.reset()

    def process(self, inputs: Mapping[str, Any], outputs: torch.Tensor) -> None:
        self._collector.process(inputs, outputs)

    def collected(self) -> Optional[Dict[str, Any]]:
        """The features and labels processed so far, in dataset order (queries first): ``{"feats", "pids",
        "camids", "img_paths"}`` as :meth:`fastreid.evaluation.FeatureCollector.collect` returns them (a new
        copy; None on non-main processes). For artefacts beyond the metrics, such as rank-list images."""
        return self._collector.collect()

    def evaluate(self) -> Dict[str, float]:
        data = self._collector.collect()
        if data is None:
            return {}
        feats = data["feats"].to(self._collector.device)
        nq = self.num_query
        pids, camids = data["pids"].numpy(), data["camids"].numpy()
        labels = RankLabels(pids[:nq], pids[nq:], camids[:nq], camids[nq:])
        query, gallery = feats[:nq], feats[nq:]
        if self.aqe.enabled:
            logger.info("Average query expansion: %s", self.aqe)
            query, gallery = average_query_expansion(query, gallery, **self.context.stage_chunk(),
                                                     **self.aqe.kwargs())
            del feats, data  # the raw features are no longer needed
        # The strategy owns query and gallery (the collector's copy or AQE's output).
        return self.ranking.rank(query, gallery, labels, self.context).summary(self.ranks)
