"""Evaluation: evaluator protocol, inference loop, re-id ranking metrics, AQE, re-ranking."""
from .distance import compute_distance_matrix, iter_distance_chunks
from .evaluator import DatasetEvaluator, inference_context, inference_on_dataset, print_csv_format
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
    "compute_distance_matrix",
    "evaluate_rank",
    "evaluate_roc",
    "inference_context",
    "inference_on_dataset",
    "is_cython_available",
    "iter_distance_chunks",
    "print_csv_format",
    "re_ranking",
]
