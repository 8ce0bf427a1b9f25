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
        index = build_faiss_index(6, metric, kind, nlist=2, hnsw_m=4, pq_m=2, use_gpu=True)  # no GPU here: CPU index
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



def _clustered(n, dim, clusters, rng):
    """Unit-norm features around ``clusters`` random centres (re-id-like: identities as clusters)."""
    centres = rng.normal(size=(clusters, dim))
    feats = centres[rng.integers(0, clusters, n)] + 0.5 * rng.normal(size=(n, dim))
    return (feats / np.linalg.norm(feats, axis=1, keepdims=True)).astype(np.float32)


def _recall(found, exact):
    """Mean fraction of each exact top-k row found in the same row of ``found``."""
    return np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, exact)])


@needs_faiss
def test_ivf_kinds_trained_on_a_sample_reach_high_recall():
    from fastreid.evaluation.faiss_index import set_search_params, train_faiss_index
    rng = np.random.default_rng(0)
    gallery, queries = _clustered(4000, 16, 40, rng), _clustered(50, 16, 40, rng)
    exact = np.argsort(-(queries @ gallery.T), axis=1, kind="stable")[:, :10]
    for kind, params, search in (("ivf", {}, {"nprobe": 12}),
                                 ("ivfpq", {"pq_m": 8, "pq_nbits": 4}, {"nprobe": 12}),
                                 ("ivfpq", {"pq_m": 8, "pq_nbits": 4, "refine": True},
                                  {"nprobe": 12, "refine_factor": 10})):
        index = build_faiss_index(16, "cosine", kind, nlist=16, **params)
        assert train_faiss_index(index, gallery, train_size=2000, seed=0) == 2000
        assert train_faiss_index(index, gallery) == 0  # already trained
        index.add(gallery)
        set_search_params(index, **search)
        recall = _recall(index.search(queries, 10)[1], exact)
        # 4-bit codes of 2-d pieces are coarse on their own (chance would be 10 / 4000); refinement re-ranks exactly
        assert recall >= (0.35 if kind == "ivfpq" and "refine" not in params else 0.95), (kind, params, recall)


@needs_faiss
def test_training_sample_is_seeded_and_random():
    from fastreid.evaluation.faiss_index import train_faiss_index
    faiss = import_faiss()
    gallery = _clustered(1000, 8, 10, np.random.default_rng(1))

    def centroids(seed, sample=None):
        index = build_faiss_index(8, "cosine", "ivf", nlist=4)
        if sample is None:
            train_faiss_index(index, gallery, train_size=200, seed=seed)
        else:
            index.train(sample)
        return faiss.extract_index_ivf(index).quantizer.reconstruct_n(0, 4)

    rows = np.sort(np.random.default_rng(3).choice(1000, 200, replace=False))
    np.testing.assert_array_equal(centroids(3), centroids(None, gallery[rows]))
    assert not np.array_equal(centroids(3), centroids(4))


@needs_faiss
def test_bad_index_parameters_are_named():
    from fastreid.evaluation.faiss_index import train_faiss_index
    with pytest.raises(ValueError, match="pq_m=48 does not divide the feature dimension 512"):
        build_faiss_index(512, "cosine", "ivfpq", nlist=4, pq_m=48)
    with pytest.raises(ValueError, match="pq_nbits"):
        build_faiss_index(512, "cosine", "ivfpq", nlist=4, pq_nbits=0)
    with pytest.raises(ValueError, match="nlist"):
        build_faiss_index(8, "cosine", "ivf", nlist=0)
    with pytest.raises(ValueError, match="hnsw_m"):
        build_faiss_index(8, "cosine", "hnsw", hnsw_m=0)
    with pytest.raises(ValueError, match="nlist=16 inverted lists need at least as many vectors, got 10"):
        train_faiss_index(build_faiss_index(8, "cosine", "ivf", nlist=16), np.ones((10, 8), np.float32))
    with pytest.raises(ValueError, match="train_size=3 is below nlist=4"):
        train_faiss_index(build_faiss_index(8, "cosine", "ivf", nlist=4), np.ones((10, 8), np.float32), train_size=3)
