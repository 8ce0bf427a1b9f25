"""Recall@K against a brute-force computation written out in the test, with every ranking strategy."""
import numpy as np
import pytest
import torch

from fastreid.config import get_cfg
from fastreid.evaluation import DenseRanking, ExactRanking, FaissRanking, is_faiss_available


def _brute_force_recall(features, labels, ks, metric):
    """For each image, the other images sorted by (distance, index); a hit when one of the first K shares its
    class. Images alone in their class are misses."""
    f = np.asarray(features, dtype=np.float64)
    if metric == "cosine":
        f = f / np.linalg.norm(f, axis=1, keepdims=True)
    n = len(f)
    hits = {k: 0 for k in ks}
    for i in range(n):
        dist = []
        for j in range(n):
            if j != i:
                d = 1 - f[i] @ f[j] if metric == "cosine" else ((f[i] - f[j]) ** 2).sum()
                dist.append((d, j))
        order = [j for _, j in sorted(dist)]
        for k in ks:
            hits[k] += any(labels[j] == labels[i] for j in order[:k])
    return {k: 100 * hits[k] / n for k in ks}


STRATEGIES = [DenseRanking(), ExactRanking()] + (
    [FaissRanking()] if is_faiss_available() else [pytest.param(None, marks=pytest.mark.skip("faiss missing"))])


@pytest.mark.parametrize("ranking", STRATEGIES)
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_recall_at_k_equals_the_brute_force_reference(ranking, metric):
    from fast_retri import retrieval_metrics

    gen = torch.Generator().manual_seed(0)
    labels = np.array([0] * 6 + [1] * 5 + [2] * 4 + [3] * 3 + [4] * 2 + [5])  # class 5: a single image
    features = torch.randn(len(labels), 8, generator=gen) + torch.from_numpy(labels)[:, None].float() * 0.3
    ks = (1, 2, 4, 8, 30)
    expected = _brute_force_recall(features.numpy(), labels, ks, metric)
    result = retrieval_metrics(features, labels, ks, metric=metric, ranking=ranking)
    for k in ks:
        assert result[f"Recall@{k}"] == pytest.approx(expected[k]), k
    assert result["Recall@30"] == pytest.approx(100 * 20 / 21)  # every image but the singleton finds its class
    assert result["metric"] == result["Recall@1"] and 0 < result["mAP"] <= 100


def test_a_case_worked_by_hand():
    from fast_retri import retrieval_metrics

    # On a line: a(0)=0.0, b(0)=1.0, c(1)=1.6, d(1)=5.0. Nearest other: a->b hit, b->c miss, c->b miss, d->c hit.
    features = torch.tensor([[0.0], [1.0], [1.6], [5.0]])
    result = retrieval_metrics(features, np.array([0, 0, 1, 1]), (1, 2), metric="euclidean")
    assert result["Recall@1"] == pytest.approx(50.0)
    # Two nearest others: a: b, c -> hit; b: c, a -> hit; c: b, a -> miss; d: c, b -> hit.
    assert result["Recall@2"] == pytest.approx(75.0)


def test_evaluator_collects_batches_and_reads_the_config():
    from fast_retri import RetrievalEvaluator, add_retri_config, retrieval_metrics

    cfg = get_cfg()
    add_retri_config(cfg)
    cfg.merge_from_list(["TEST.RECALLS", "[1, 3]", "TEST.METRIC", "euclidean"])
    evaluator = RetrievalEvaluator(cfg)
    features, labels = torch.randn(10, 4, generator=torch.Generator().manual_seed(1)), torch.arange(10) % 3
    evaluator.reset()
    for lo in range(0, 10, 4):
        evaluator.process({"targets": labels[lo:lo + 4], "camids": torch.arange(lo, min(lo + 4, 10))},
                          features[lo:lo + 4])
    result = evaluator.evaluate()
    assert list(result) == ["Recall@1", "Recall@3", "mAP", "metric"]
    assert result == retrieval_metrics(features, labels.numpy(), (1, 3), metric="euclidean")
