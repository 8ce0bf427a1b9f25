"""FastRetri: fine-grained image retrieval on fastreid (after fast-reid's projects/FastRetri).

Importing this package registers the retrieval datasets (``CUB``, ``Cars196``, ``SOP``, ``SyntheticRetrieval``) in
DATASET_REGISTRY; ``add_retri_config`` adds TEST.RECALLS and ``RetriTrainer`` evaluates Recall@K. Models and
losses are fastreid's own.
"""
from .config import add_retri_config
from .datasets import CUB, SOP, Cars196, RetrievalDataset, SyntheticRetrieval, split_by_class
from .evaluation import RetrievalEvaluator, retrieval_metrics
from .trainer import RetriTrainer

__all__ = ["CUB", "Cars196", "RetriTrainer", "RetrievalDataset", "RetrievalEvaluator", "SOP", "SyntheticRetrieval",
           "add_retri_config", "retrieval_metrics", "split_by_class"]
