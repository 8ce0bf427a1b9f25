import sys

import numpy as np
import pytest
import torch

from fastreid.evaluation import (METRIC_TABLE, build_faiss_index, evaluate_rank_faiss, import_faiss,
                                 is_faiss_available)
from fastreid.evaluation.distance import METRICS
from fastreid.evaluation.faiss_index import INDEX_KINDS

needs_faiss = pytest.mark.skipif(not is_faiss_available(), reason="faiss not installed")


def test_metric_table_covers_the_evaluation_metrics():
    assert tuple(METRIC_TABLE) == METRICS
    scores = np.array([[0.9, 0.25]], np.float32)
    np.testing.assert_array_equal(METRIC_TABLE["cosine"].to_distance(scores), 1.0 - scores.astype(np.float64))
    np.testing.assert_array_equal(METRIC_TABLE["euclidean"].to_distance(scores), scores.astype(np.float64))
    assert METRIC_TABLE["cosine"].higher_is_closer and not METRIC_TABLE["euclidean"].higher_is_closer


@needs_faiss
@pytest.mark.parametrize("metric", METRICS)
def test_factory_builds_every_kind(metric):
    faiss = import_faiss()
    for kind in INDEX_KINDS:
        index = build_faiss_index(6, metric, kind, nlist=2, hnsw_m=4, use_gpu=True)  # no GPU here: CPU index
        assert index.d == 6 and index.ntotal == 0
        assert index.metric_type == getattr(faiss, METRIC_TABLE[metric].faiss_metric)
    with pytest.raises(ValueError, match="kind"):
        build_faiss_index(6, metric, "lsh")
    with pytest.raises(ValueError, match="metric"):
        build_faiss_index(6, "manhattan")


def test_missing_faiss_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # what an absent package looks like to import
    assert not is_faiss_available()
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        build_faiss_index(4, "cosine")
    q, g = torch.randn(2, 4), torch.randn(5, 4)
    labels = np.array([0, 1]), np.array([0, 1, 0, 1, 2]), np.zeros(2, int), np.ones(5, int)
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        evaluate_rank_faiss(q, g, *labels)

