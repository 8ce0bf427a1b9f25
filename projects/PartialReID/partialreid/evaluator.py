"""``DSREvaluator``: re-id metrics of the DSR distance between query and gallery spatial feature maps."""
import logging
from collections import OrderedDict
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np
import torch

from fastreid.config import configurable
from fastreid.evaluation import DatasetEvaluator, FeatureCollector, compute_distance_matrix, evaluate_rank

from .dsr import dsr_distance, spatial_dictionary

__all__ = ["DSREvaluator", "rank_metrics"]

logger = logging.getLogger(__name__)


def rank_metrics(dist: torch.Tensor, q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray,
                 g_camids: np.ndarray, ranks: Sequence[int] = (1, 5, 10), prefix: str = "") -> Dict[str, float]:
    """``Rank-k``, ``mAP``, ``mINP`` (percent) and ``metric`` = (mAP + Rank-1) / 2 of a Q×G distance matrix,
    from :func:`fastreid.evaluation.evaluate_rank`; every name gets ``prefix``."""
    cmc, all_ap, all_inp = evaluate_rank(dist, q_pids, g_pids, q_camids, g_camids, max_rank=max(ranks))
    results = OrderedDict((f"{prefix}Rank-{r}", float(cmc[min(r, len(cmc)) - 1]) * 100) for r in ranks)
    results[f"{prefix}mAP"] = float(np.mean(all_ap)) * 100
    results[f"{prefix}mINP"] = float(np.mean(all_inp)) * 100
    results[f"{prefix}metric"] = (results[f"{prefix}mAP"] + results[f"{prefix}Rank-1"]) / 2
    return results


class DSREvaluator(DatasetEvaluator):
    """Ranks the gallery for each query by the DSR distance of their B×C×h×w maps (see :mod:`partialreid.dsr`).

    Results (main process; ``{}`` elsewhere): the usual ``Rank-k``, ``mAP``, ``mINP`` and ``metric`` of the DSR
    distance, and the same of the cosine distance between globally average-pooled maps as ``Global-Rank-1``,
    ``Global-mAP``, ..., the whole-image matching that DSR improves on for partial queries.

    Args:
        num_query: the first ``num_query`` samples are queries, the rest gallery.
        regularizer: the ridge weight β (TEST.DSR.REGULARIZER).
        gallery_scales: pooling windows of the gallery dictionaries (TEST.DSR.GALLERY_SCALES).
        ranks: the CMC ranks reported.
    """

    @configurable
    def __init__(self, num_query: int, *, regularizer: float = 0.1, gallery_scales: Sequence[int] = (1,),
                 ranks: Sequence[int] = (1, 5, 10)) -> None:
        self.num_query = num_query
        self.regularizer = regularizer
        self.gallery_scales = tuple(gallery_scales)
        self.ranks = tuple(ranks)
        self._collector = FeatureCollector()
        self._map_shape = None

    @classmethod
    def from_config(cls, cfg, num_query: int, output_dir: Optional[str] = None) -> Dict[str, Any]:
        if cfg.TEST.FLIP_ENABLED:
            raise ValueError("DSREvaluator matches spatial maps location by location, and a mirrored image's map "
                             "does not line up with the original's: set TEST.FLIP_ENABLED False.")
        return {"num_query": num_query, "regularizer": cfg.TEST.DSR.REGULARIZER,
                "gallery_scales": cfg.TEST.DSR.GALLERY_SCALES}

    def reset(self) -> None:
        self._collector.reset()
        self._map_shape = None

    def process(self, inputs: Mapping[str, Any], outputs: torch.Tensor) -> None:
        """``outputs``: the B×C×h×w maps of :class:`~partialreid.DSRBaseline` in eval mode."""
        if outputs.dim() != 4:
            raise ValueError(f"DSREvaluator needs B×C×h×w feature maps, got shape {tuple(outputs.shape)}: set "
                             "MODEL.META_ARCHITECTURE DSRBaseline")
        self._map_shape = tuple(outputs.shape[1:])
        self._collector.process(inputs, outputs.flatten(1))

    def evaluate(self) -> Dict[str, float]:
        data = self._collector.collect()
        if data is None:
            return {}
        maps = data["feats"].view(-1, *self._map_shape)
        nq = self.num_query
        pids, camids = data["pids"].numpy(), data["camids"].numpy()
        labels = (pids[:nq], pids[nq:], camids[:nq], camids[nq:])
        dist = dsr_distance(spatial_dictionary(maps[:nq]), spatial_dictionary(maps[nq:], self.gallery_scales),
                            self.regularizer)
        results = rank_metrics(dist, *labels, ranks=self.ranks)
        pooled = maps.mean(dim=(2, 3))
        results.update(rank_metrics(compute_distance_matrix(pooled[:nq], pooled[nq:], "cosine"), *labels,
                                    ranks=self.ranks, prefix="Global-"))
        logger.info("DSR mAP %.2f vs global-feature mAP %.2f", results["mAP"], results["Global-mAP"])
        return results
