"""Evaluation: evaluator protocol, inference loop, re-id ranking strategies and metrics, AQE, re-ranking."""
from .actmap import activation_maps, featuremap_activations, render_panels
from .distance import compute_distance_matrix, iter_distance_chunks
from .evaluator import DatasetEvaluator, forward_features, inference_context, inference_on_dataset, print_csv_format
from .exact_rank import evaluate_rank_exact
from .faiss_index import METRIC_TABLE, build_faiss_index, import_faiss, is_faiss_available
from .faiss_rank import evaluate_rank_faiss
from .feature_collector import FeatureCollector
from .options import AQEOptions, FaissOptions, RerankOptions
from .query_expansion import average_query_expansion
from .rank import GalleryGroups, RankAccumulator, compiled_ranker, evaluate_rank, is_cython_available
from .ranking import (RANKING_REGISTRY, DenseRanking, ExactRanking, FaissRanking, RankingContext, RankingStrategy,
                      RankLabels, RankResult, build_ranking)
from .reid_evaluation import ReidEvaluator
from .rerank import re_ranking
from .roc import evaluate_roc

__all__ = [
    "AQEOptions",
    "DatasetEvaluator",
    "DenseRanking",
    "ExactRanking",
    "FaissOptions",
    "FaissRanking",
    "FeatureCollector",
    "GalleryGroups",
    "METRIC_TABLE",
    "RANKING_REGISTRY",
    "RankAccumulator",
    "RankLabels",
    "RankResult",
    "RankingContext",
    "RankingStrategy",
    "ReidEvaluator",
    "RerankOptions",
    "activation_maps",
    "average_query_expansion",
    "build_faiss_index",
    "build_ranking",
    "compiled_ranker",
    "compute_distance_matrix",
    "evaluate_rank",
    "evaluate_rank_exact",
    "evaluate_rank_faiss",
    "evaluate_roc",
    "featuremap_activations",
    "import_faiss",
    "forward_features",
    "inference_context",
    "inference_on_dataset",
    "is_cython_available",
    "is_faiss_available",
    "iter_distance_chunks",
    "print_csv_format",
    "re_ranking",
    "render_panels",
]
