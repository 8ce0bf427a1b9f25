"""Ranking strategies: query and gallery features with their labels -> CMC, AP, INP (and ROC).

:class:`ReidEvaluator` collects the features, applies average query expansion and hands the rest to
one :class:`RankingStrategy`:

* :class:`DenseRanking` (the default): every query-gallery distance, in row chunks, optionally
  k-reciprocal re-ranked, optionally with the verification ROC. The only strategy that sees every
  distance.
* :class:`ExactRanking` (``TEST.EXACT_RANKING``): the ranking of the float64 distances at about the
  float32 cost (:func:`~fastreid.evaluation.exact_rank.evaluate_rank_exact`).
* :class:`FaissRanking` (``TEST.FAISS.ENABLED``): a faiss top-k search with exact float64 re-checks
  (:func:`~fastreid.evaluation.faiss_rank.evaluate_rank_faiss`); same numbers as the exact strategy.

Strategies are registered in :data:`RANKING_REGISTRY`; :func:`build_ranking` picks one from the config.
"""
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from collections import OrderedDict
from typing import Any, Dict, NamedTuple, Optional, Sequence

import numpy as np
import torch

from fastreid.config import configurable
from fastreid.utils.registry import Registry

from .distance import budget_chunk_rows, iter_distance_chunks, prepare_features
from .exact_rank import evaluate_rank_exact
from .faiss_rank import evaluate_rank_faiss
from .options import FaissOptions, RerankOptions
from .rank import RankAccumulator
from .rerank import re_ranking
from .roc import RocAccumulator

logger = logging.getLogger(__name__)

__all__ = ["RANKING_REGISTRY", "DenseRanking", "ExactRanking", "FaissRanking", "RankLabels", "RankResult",
           "RankingContext", "RankingStrategy", "build_ranking"]

RANKING_REGISTRY = Registry("RANKING")
RANKING_REGISTRY.__doc__ = """Ranking strategies by class name (the names of TEST.RANKING): :class:`RankingStrategy`
subclasses, built by :func:`build_ranking` as ``cls(**cls.from_config(cfg))``."""


class RankLabels(NamedTuple):
    """Identities and cameras of the queries (Q,) and the gallery (G,), int64 arrays.

    Unpacks in the argument order of :func:`~fastreid.evaluation.evaluate_rank`.
    """

    q_pids: np.ndarray
    g_pids: np.ndarray
    q_camids: np.ndarray
    g_camids: np.ndarray


@dataclass(frozen=True)
class RankingContext:
    """The protocol and resource settings every strategy honours (owned by the evaluator).

    Attributes:
        metric: ``"cosine"`` or ``"euclidean"`` (TEST.METRIC).
        max_rank: CMC length (capped at the gallery size).
        ignore_camid: keep same-camera gallery items of the query identity.
        use_cython: compiled ranker (identical numbers to the vectorised path).
        chunk_size: query rows per distance chunk; ``None`` picks them from a 256 MiB float32 budget
            and leaves AQE, re-ranking and faiss their own default.
        use_metric_cuhk03: CMC under CUHK03's single-gallery-shot protocol (10 seeded draws of one
            gallery image per identity); AP and INP still use the whole gallery. Dense ranking only.
    """

    metric: str = "cosine"
    max_rank: int = 50
    ignore_camid: bool = False
    use_cython: bool = True
    chunk_size: Optional[int] = None
    use_metric_cuhk03: bool = False

    def stage_chunk(self) -> Dict[str, int]:
        """``{"chunk_size": ...}`` for stages with their own default (AQE, re-ranking, faiss), if set."""
        return {} if self.chunk_size is None else {"chunk_size": self.chunk_size}

    def rank_kwargs(self) -> Dict[str, Any]:
        """``metric``, ``max_rank``, ``use_cython`` and ``ignore_camid`` as keyword arguments."""
        return dict(metric=self.metric, max_rank=self.max_rank, use_cython=self.use_cython,
                    ignore_camid=self.ignore_camid)


@dataclass
class RankResult:
    """What a strategy returns.

    Attributes:
        cmc: (max_rank,) float64 CMC curve, mean over valid queries.
        all_ap: (V,) float64 average precision of the V valid queries.
        all_inp: (V,) float64 inverse negative penalty of the valid queries.
        roc: ``{"TPR@FPR=1e-04": tpr, ...}`` (fractions) when the strategy computes the ROC, else None.
    """

    cmc: np.ndarray
    all_ap: np.ndarray
    all_inp: np.ndarray
    roc: Optional[Dict[str, float]] = None

    def summary(self, ranks: Sequence[int] = (1, 5, 10)) -> Dict[str, float]:
        """The evaluation results in percent, in fast-reid's order: ``Rank-k`` for each of ``ranks`` (the CMC's
        last value beyond its length), ``mAP``, ``mINP``, ``metric`` (the mean of mAP and Rank-1) and the ROC
        entries when there are any. Needs 1 in ``ranks``."""
        results: Dict[str, float] = OrderedDict()
        for r in ranks:
            results[f"Rank-{r}"] = float(self.cmc[min(r, len(self.cmc)) - 1]) * 100
        results["mAP"] = float(np.mean(self.all_ap)) * 100
        results["mINP"] = float(np.mean(self.all_inp)) * 100
        results["metric"] = (results["mAP"] + results["Rank-1"]) / 2
        if self.roc is not None:
            results.update((k, v * 100) for k, v in self.roc.items())
        return results


class RankingStrategy(ABC):
    """Turns query and gallery features into rank statistics.

    A subclass implements :meth:`rank`; to take options from the config it overrides
    :meth:`from_config`. Register it with ``@RANKING_REGISTRY.register()`` to select it by name
    (``TEST.RANKING``), or pass an instance to ``ReidEvaluator(..., ranking=...)``.
    """

    @classmethod
    def from_config(cls, cfg) -> Dict[str, Any]:
        """Constructor keyword arguments read from ``cfg`` (none by default)."""
        return {}

    @abstractmethod
    def rank(self, query: torch.Tensor, gallery: torch.Tensor, labels: RankLabels,
             context: RankingContext) -> RankResult:
        """Ranks the gallery for every query under the re-id protocol.

        Args:
            query: (Q, D) features (AQE already applied), on the features' device.
            gallery: (G, D) features on the same device.
            labels: identities and cameras of both sets.
            context: metric, CMC length, camera rule and chunking.

        Returns:
            The rank statistics. The strategy owns ``query`` and ``gallery`` and may overwrite them
            (the evaluator passes its own copies).
        """


@RANKING_REGISTRY.register()
class DenseRanking(RankingStrategy):
    """Every query-gallery distance in row chunks, optionally re-ranked, optionally with the ROC.

    Args:
        rerank: k-reciprocal re-ranking (used when ``rerank.enabled``).
        roc_enabled: also report TPR at FPR 1e-4, 1e-3, 1e-2 (TEST.ROC_ENABLED).
    """

    @configurable
    def __init__(self, *, rerank: RerankOptions = RerankOptions(), roc_enabled: bool = False) -> None:
        self.rerank = rerank
        self.roc_enabled = roc_enabled

    @classmethod
    def from_config(cls, cfg) -> Dict[str, Any]:
        return {"rerank": RerankOptions.from_config(cfg), "roc_enabled": cfg.TEST.ROC_ENABLED}

    def rank(self, query: torch.Tensor, gallery: torch.Tensor, labels: RankLabels,
             context: RankingContext) -> RankResult:
        num_q = query.shape[0]
        chunk = context.chunk_size or budget_chunk_rows(num_q, gallery.shape[0])
        if self.rerank.enabled:
            logger.info("k-reciprocal re-ranking: %s", self.rerank)
            reranked = re_ranking(query, gallery, context.metric, **context.stage_chunk(), **self.rerank.kwargs())
            chunks = ((s, reranked[s:s + chunk]) for s in range(0, num_q, chunk))
        else:
            query = prepare_features(query, context.metric, inplace=True)
            gallery = prepare_features(gallery, context.metric, inplace=True)
            chunks = iter_distance_chunks(query, gallery, context.metric, chunk, prepared=True)
        ranker = RankAccumulator(*labels, use_cython=context.use_cython, ignore_camid=context.ignore_camid,
                                 use_metric_cuhk03=context.use_metric_cuhk03)
        roc = RocAccumulator(*labels, ignore_camid=context.ignore_camid) if self.roc_enabled else None
        for start, dist in chunks:
            ranker.add(dist, start)
            if roc is not None:
                roc.add(dist, start)
        return RankResult(*ranker.finalize(context.max_rank), roc=None if roc is None else roc.finalize())


def _check_all_gallery_protocol(strategy: RankingStrategy, context: RankingContext) -> None:
    if context.use_metric_cuhk03:
        raise ValueError(f"{type(strategy).__name__} ranks the whole gallery; the CUHK03 single-gallery-shot CMC "
                         f"(use_metric_cuhk03) needs DenseRanking (TEST.RANKING DenseRanking).")


@RANKING_REGISTRY.register()
class ExactRanking(RankingStrategy):
    """The ranking of the float64 distances: chunk-independent numbers, identical to :class:`FaissRanking`."""

    def rank(self, query: torch.Tensor, gallery: torch.Tensor, labels: RankLabels,
             context: RankingContext) -> RankResult:
        _check_all_gallery_protocol(self, context)
        return RankResult(*evaluate_rank_exact(query, gallery, *labels, **context.rank_kwargs()))


@RANKING_REGISTRY.register()
class FaissRanking(RankingStrategy):
    """A faiss top-k search with exact float64 re-checks (needs faiss).

    Args:
        options: neighbours searched per query and GPU use (``options.enabled`` is not read here).
    """

    @configurable
    def __init__(self, *, options: FaissOptions = FaissOptions()) -> None:
        self.options = options

    @classmethod
    def from_config(cls, cfg) -> Dict[str, Any]:
        return {"options": FaissOptions.from_config(cfg)}

    def rank(self, query: torch.Tensor, gallery: torch.Tensor, labels: RankLabels,
             context: RankingContext) -> RankResult:
        _check_all_gallery_protocol(self, context)
        return RankResult(*evaluate_rank_faiss(query, gallery, *labels, **self.options.kwargs(),
                                               **context.stage_chunk(), **context.rank_kwargs()))


def _automatic_choice(test) -> str:
    """Registered name picked from ``TEST.FAISS.ENABLED``, ``TEST.EXACT_RANKING``, re-ranking and ROC."""
    if not (test.FAISS.ENABLED or test.EXACT_RANKING):
        return "DenseRanking"
    if test.RERANK.ENABLED or test.ROC_ENABLED:
        logger.info("faiss/exact ranking skipped: re-ranking and ROC need every query-gallery distance.")
        return "DenseRanking"
    return "FaissRanking" if test.FAISS.ENABLED else "ExactRanking"


def build_ranking(cfg) -> RankingStrategy:
    """The ranking strategy of ``cfg``.

    ``TEST.RANKING`` names a registered strategy; empty (the default) chooses automatically: faiss
    when ``TEST.FAISS.ENABLED``, exact when ``TEST.EXACT_RANKING``, dense otherwise, and dense
    whenever re-ranking or the ROC is enabled, as they need every query-gallery distance.

    Raises:
        KeyError: ``TEST.RANKING`` names no registered strategy.
        TypeError: the registered object is not a :class:`RankingStrategy` subclass.
    """
    name = cfg.TEST.RANKING or _automatic_choice(cfg.TEST)
    cls = RANKING_REGISTRY.get(name)
    if not (isinstance(cls, type) and issubclass(cls, RankingStrategy)):
        raise TypeError(f"Ranking '{name}' is {cls!r}, not a RankingStrategy subclass")
    return cls(**cls.from_config(cfg))
