"""Re-id evaluator: query/gallery features -> CMC, mAP, mINP (and optional ROC)."""
import copy
import logging
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

from fastreid.config import configurable
from fastreid.utils import comm

from .distance import budget_chunk_rows, iter_distance_chunks, prepare_features
from .evaluator import DatasetEvaluator
from .exact_rank import evaluate_rank_exact
from .faiss_rank import evaluate_rank_faiss
from .query_expansion import average_query_expansion
from .rank import RankAccumulator
from .rerank import re_ranking
from .roc import RocAccumulator

logger = logging.getLogger(__name__)

__all__ = ["ReidEvaluator"]


class ReidEvaluator(DatasetEvaluator):
    """Evaluates features of a test set laid out as ``num_query`` queries then the gallery.

    ``process(inputs, outputs)`` takes ``inputs["targets"]`` (B,) identities,
    ``inputs["camids"]`` (B,) cameras, optionally ``inputs["img_paths"]`` and
    ``inputs["indices"]`` (dataset indices), and ``outputs`` (B, D) features.

    Under DDP, ``evaluate`` all-gathers the records of every process. If ``indices`` were
    given, samples are put back in dataset order and duplicates (padding of distributed
    samplers) dropped; otherwise the shards are concatenated in rank order, which restores
    the dataset order for contiguous shards such as the ``InferenceSampler``'s.

    Results (main process; ``{}`` elsewhere), in percent: ``Rank-1``, ``Rank-5``,
    ``Rank-10``, ``mAP``, ``mINP``, ``metric`` = (mAP + Rank-1) / 2, and with ROC enabled
    ``TPR@FPR=1e-04``, ``TPR@FPR=1e-03``, ``TPR@FPR=1e-02``.
    """

    @configurable
    def __init__(self, num_query: int, *, metric: str = "cosine", output_dir: Optional[str] = None,
                 aqe_enabled: bool = False, aqe_qe_time: int = 1, aqe_qe_k: int = 5, aqe_alpha: float = 3.0,
                 rerank_enabled: bool = False, rerank_k1: int = 20, rerank_k2: int = 6,
                 rerank_lambda: float = 0.3, roc_enabled: bool = False, ignore_camid: bool = False,
                 use_cython: bool = True, max_rank: int = 50, chunk_size: Optional[int] = None,
                 faiss_enabled: bool = False, faiss_topk: int = 100, faiss_use_gpu: bool = True,
                 exact_ranking: bool = False):
        """
        Args:
            num_query: the first ``num_query`` samples are queries, the rest gallery.
            metric: ``"cosine"`` or ``"euclidean"`` (TEST.METRIC).
            output_dir: where evaluation artefacts may be written (unused by the metrics).
            aqe_enabled, aqe_qe_time, aqe_qe_k, aqe_alpha: TEST.AQE.*.
            rerank_enabled, rerank_k1, rerank_k2, rerank_lambda: TEST.RERANK.*.
            roc_enabled: also report TPR at FPR 1e-4, 1e-3, 1e-2 (TEST.ROC_ENABLED).
            ignore_camid: keep same-camera gallery items of the query identity.
            use_cython: compiled ranker (identical numbers to the vectorised path).
            max_rank: CMC length.
            chunk_size: query rows per distance chunk (bounds memory); ``None`` picks them
                from a 256 MiB float32 budget (all Market-1501 queries at once, ~800 rows
                of an MSMT17 gallery), and leaves AQE and re-ranking their own panel size.
            faiss_enabled: rank from a faiss top-``faiss_topk`` search with exact float64
                re-checks (:func:`~fastreid.evaluation.faiss_rank.evaluate_rank_faiss`);
                used only without re-ranking and ROC, which need every distance.
            faiss_topk: neighbours searched per query (TEST.FAISS.TOPK).
            faiss_use_gpu: GPU faiss index when faiss-gpu and CUDA exist (TEST.FAISS.USE_GPU).
            exact_ranking: rank on float64 distances via a float32 screen with exact
                re-checks (:func:`~fastreid.evaluation.exact_rank.evaluate_rank_exact`):
                chunk-independent numbers, identical to the faiss path; used without
                re-ranking and ROC.
        """
        self.num_query = num_query
        self.metric = metric
        self.output_dir = output_dir
        self.aqe = dict(enabled=aqe_enabled, qe_times=aqe_qe_time, qe_k=aqe_qe_k, alpha=aqe_alpha)
        self.rerank = dict(enabled=rerank_enabled, k1=rerank_k1, k2=rerank_k2, lambda_value=rerank_lambda)
        self.roc_enabled = roc_enabled
        self.ignore_camid = ignore_camid
        self.use_cython = use_cython
        self.max_rank = max_rank
        self.chunk_size = chunk_size
        self.faiss = dict(enabled=faiss_enabled, topk=faiss_topk, use_gpu=faiss_use_gpu)
        self.exact_ranking = exact_ranking
        self.reset()

    @classmethod
    def from_config(cls, cfg, num_query: int, output_dir: Optional[str] = None) -> Dict[str, Any]:
        return {
            "num_query": num_query,
            "output_dir": output_dir,
            "metric": cfg.TEST.METRIC,
            "aqe_enabled": cfg.TEST.AQE.ENABLED,
            "aqe_qe_time": cfg.TEST.AQE.QE_TIME,
            "aqe_qe_k": cfg.TEST.AQE.QE_K,
            "aqe_alpha": cfg.TEST.AQE.ALPHA,
            "rerank_enabled": cfg.TEST.RERANK.ENABLED,
            "rerank_k1": cfg.TEST.RERANK.K1,
            "rerank_k2": cfg.TEST.RERANK.K2,
            "rerank_lambda": cfg.TEST.RERANK.LAMBDA,
            "roc_enabled": cfg.TEST.ROC_ENABLED,
            "faiss_enabled": cfg.TEST.FAISS.ENABLED,
            "faiss_topk": cfg.TEST.FAISS.TOPK,
            "faiss_use_gpu": cfg.TEST.FAISS.USE_GPU,
        }

    def reset(self) -> None:
        self._records: List[Dict[str, Any]] = []
        self._device = torch.device("cpu")

    def process(self, inputs: Mapping[str, Any], outputs: torch.Tensor) -> None:
        self._device = outputs.device
        record = {
            "feats": outputs.detach().float().cpu(),
            "pids": torch.as_tensor(inputs["targets"]).cpu().long(),
            "camids": torch.as_tensor(inputs["camids"]).cpu().long(),
            "paths": list(inputs.get("img_paths", [""] * len(outputs))),
        }
        if "indices" in inputs:
            record["indices"] = torch.as_tensor(inputs["indices"]).cpu().long()
        self._records.append(record)

    def _collect(self) -> Optional[Dict[str, Any]]:
        records = self._records
        if comm.get_world_size() > 1:
            comm.synchronize()
            gathered = comm.all_gather(records)
            if not comm.is_main_process():
                return None
            records = [r for part in gathered for r in part]
        if not records:
            raise RuntimeError("ReidEvaluator.evaluate() called before any process().")
        data = {k: torch.cat([r[k] for r in records]) for k in ("feats", "pids", "camids")}
        data["paths"] = [p for r in records for p in r["paths"]]
        if all("indices" in r for r in records):
            idx = torch.cat([r["indices"] for r in records])
            uniq, first = np.unique(idx.numpy(), return_index=True)
            order = torch.from_numpy(first)
            data = {k: (v[order] if torch.is_tensor(v) else [v[i] for i in first]) for k, v in data.items()}
        return data

    def evaluate(self) -> Dict[str, float]:
        data = self._collect()
        if data is None:
            return {}
        feats = data["feats"].to(self._device)
        nq = self.num_query
        query, gallery = feats[:nq], feats[nq:]
        pids, camids = data["pids"].numpy(), data["camids"].numpy()
        q_pids, g_pids, q_camids, g_camids = pids[:nq], pids[nq:], camids[:nq], camids[nq:]
        chunk = self.chunk_size or budget_chunk_rows(nq, len(g_pids))
        if self.aqe["enabled"]:
            logger.info("Average query expansion: %s", self.aqe)
            aqe = {k: v for k, v in self.aqe.items() if k != "enabled"}
            query, gallery = average_query_expansion(query, gallery, **self._own_chunk(), **aqe)
            del feats, data  # the raw features are no longer needed

        ranked = self._rank_from_features(query, gallery, (q_pids, g_pids, q_camids, g_camids))
        if ranked is not None:
            return self._results(*ranked, None)

        if self.rerank["enabled"]:
            logger.info("k-reciprocal re-ranking: %s", self.rerank)
            rr = {k: v for k, v in self.rerank.items() if k != "enabled"}
            reranked = re_ranking(query, gallery, self.metric, **self._own_chunk(), **rr)
            chunks = ((s, reranked[s:s + chunk]) for s in range(0, nq, chunk))
        else:
            # evaluate() owns these tensors (concatenated records or AQE output).
            query = prepare_features(query, self.metric, inplace=True)
            gallery = prepare_features(gallery, self.metric, inplace=True)
            chunks = iter_distance_chunks(query, gallery, self.metric, chunk, prepared=True)

        ranker = RankAccumulator(q_pids, g_pids, q_camids, g_camids, use_cython=self.use_cython,
                                 ignore_camid=self.ignore_camid)
        roc = RocAccumulator(q_pids, g_pids, q_camids, g_camids, ignore_camid=self.ignore_camid) \
            if self.roc_enabled else None
        for start, dist in chunks:
            ranker.add(dist, start)
            if roc is not None:
                roc.add(dist, start)
        cmc, all_ap, all_inp = ranker.finalize(self.max_rank)
        return self._results(cmc, all_ap, all_inp, roc)

    def _own_chunk(self) -> Dict[str, int]:
        """``chunk_size`` for stages with their own default (AQE, re-ranking, faiss), if set."""
        return {} if self.chunk_size is None else {"chunk_size": self.chunk_size}

    def _rank_from_features(self, query: torch.Tensor, gallery: torch.Tensor,
                            labels: Tuple[np.ndarray, ...]) -> Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """faiss or exact ranking when enabled and no stage needs every distance, else None."""
        if not (self.faiss["enabled"] or self.exact_ranking):
            return None
        if self.rerank["enabled"] or self.roc_enabled:
            logger.info("faiss/exact ranking skipped: re-ranking and ROC need every query-gallery distance.")
            return None
        common = dict(metric=self.metric, max_rank=self.max_rank, use_cython=self.use_cython,
                      ignore_camid=self.ignore_camid)
        if self.faiss["enabled"]:
            return evaluate_rank_faiss(query, gallery, *labels, topk=self.faiss["topk"],
                                       use_gpu=self.faiss["use_gpu"], **self._own_chunk(), **common)
        return evaluate_rank_exact(query, gallery, *labels, **common)

    @staticmethod
    def _results(cmc: np.ndarray, all_ap: np.ndarray, all_inp: np.ndarray,
                 roc: Optional[RocAccumulator]) -> Dict[str, float]:
        results = OrderedDict()
        for r in (1, 5, 10):
            results[f"Rank-{r}"] = float(cmc[min(r, len(cmc)) - 1]) * 100
        results["mAP"] = float(np.mean(all_ap)) * 100
        results["mINP"] = float(np.mean(all_inp)) * 100
        results["metric"] = (results["mAP"] + results["Rank-1"]) / 2
        if roc is not None:
            results.update((k, v * 100) for k, v in roc.finalize().items())
        return copy.deepcopy(results)
