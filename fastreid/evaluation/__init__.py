"""Evaluation: evaluator protocol, inference loop, re-id ranking metrics, AQE, re-ranking."""
from .distance import compute_distance_matrix, iter_distance_chunks
from .evaluator import DatasetEvaluator, inference_context, inference_on_dataset, print_csv_format
from .exact_rank import evaluate_rank_exact
from .faiss_rank import build_faiss_index, evaluate_rank_faiss, is_faiss_available
from .query_expansion import average_query_expansion
from .rank import RankAccumulator, evaluate_rank, is_cython_available
from .reid_evaluation import ReidEvaluator
from .rerank import re_ranking
from .roc import evaluate_roc

__all__ = [
    "DatasetEvaluator",
    "RankAccumulator",
    "ReidEvaluator",
    "average_query_expansion",
    "build_faiss_index",
    "compute_distance_matrix",
    "evaluate_rank",
    "evaluate_rank_exact",
    "evaluate_rank_faiss",
    "evaluate_roc",
    "inference_context",
    "inference_on_dataset",
    "is_cython_available",
    "is_faiss_available",
    "iter_distance_chunks",
    "print_csv_format",
    "re_ranking",
]
