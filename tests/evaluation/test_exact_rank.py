import numpy as np
import pytest
import torch

from fastreid.evaluation import ExactRanking, ReidEvaluator, compute_distance_matrix, evaluate_rank, evaluate_rank_exact
from fastreid.evaluation import exact_rank
from reference import brute_force_rank
from test_faiss_rank import _clustered, _signed_patterns


def _check(q, g, labels, metric, ignore_camid=False, max_rank=10):
    dist = compute_distance_matrix(q.double(), g.double(), metric)
    want = brute_force_rank(dist.numpy(), *labels.values(), max_rank, ignore_camid)
    got = evaluate_rank_exact(q, g, **labels, metric=metric, max_rank=max_rank, ignore_camid=ignore_camid)
    for a, b in zip(got, want):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-12, rtol=0)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("compiled", [True, False])
def test_matches_float64_brute_force_including_near_ties(metric, compiled, monkeypatch):
    if not compiled:
        monkeypatch.setattr(exact_rank, "compiled_ranker", lambda: None)
    q, base, labels = _clustered(6, nq=20, ng=60, noise=0.4)
    g = torch.cat([base, base + 3e-7 * torch.randn_like(base)])  # copies below float32 precision
    labels["g_pids"] = np.concatenate([labels["g_pids"], 100 + np.arange(60)])
    labels["g_camids"] = np.concatenate([labels["g_camids"], labels["g_camids"]])
    _check(q, g, labels, metric, ignore_camid=compiled)


@pytest.mark.parametrize("compiled", [True, False])
def test_exact_ties_follow_gallery_index(compiled, monkeypatch):
    if not compiled:
        monkeypatch.setattr(exact_rank, "compiled_ranker", lambda: None)
    rng = np.random.default_rng(3)
    templates = _signed_patterns(rng, 4)
    g_pids, q_pids = rng.integers(0, 4, 90), rng.integers(0, 4, 15)
    g, q = templates[g_pids], templates[q_pids]
    g_pids[::5] = 50 + np.arange(18)  # distractors identical to positives
    labels = dict(q_pids=q_pids, g_pids=g_pids, q_camids=rng.integers(0, 2, 15), g_camids=rng.integers(0, 2, 90))
    for metric in ("cosine", "euclidean"):
        _check(torch.from_numpy(q), torch.from_numpy(g), labels, metric)


def test_matches_float64_on_larger_random_input():
    q, g, labels = _clustered(7, nq=40, ng=400, dim=64, noise=1.0)
    want = evaluate_rank(compute_distance_matrix(q.double(), g.double()), **labels)
    got = evaluate_rank_exact(q, g, **labels)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, atol=1e-12, rtol=0)


def test_reid_evaluator_exact_ranking():
    q, g, labels = _clustered(8, nq=12, ng=80)
    ev = ReidEvaluator(num_query=12, ranking=ExactRanking())
    pids = torch.from_numpy(np.concatenate([labels["q_pids"], labels["g_pids"]]))
    camids = torch.from_numpy(np.concatenate([labels["q_camids"], labels["g_camids"]]))
    ev.process({"targets": pids, "camids": camids}, torch.cat([q, g]))
    res = ev.evaluate()
    cmc, ap, inp = evaluate_rank(compute_distance_matrix(q.double(), g.double()), **labels)
    assert res["Rank-1"] == cmc[0] * 100 and res["mAP"] == np.mean(ap) * 100 and res["mINP"] == np.mean(inp) * 100
