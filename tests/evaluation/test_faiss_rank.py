import numpy as np
import pytest
import torch

from fastreid.config import get_cfg
from fastreid.evaluation import (DenseRanking, FaissOptions, FaissRanking, ReidEvaluator, compute_distance_matrix,
                                 evaluate_rank, is_faiss_available)
from fastreid.evaluation.faiss_rank import evaluate_rank_faiss
from reference import brute_force_rank

pytestmark = pytest.mark.skipif(not is_faiss_available(), reason="faiss not installed")


def _clustered(seed, nq=30, ng=200, ids=8, dim=16, noise=0.5, cams=3):
    g = torch.Generator().manual_seed(seed)
    pids = torch.randint(0, ids, (nq + ng,), generator=g)
    camids = torch.randint(0, cams, (nq + ng,), generator=g)
    feats = torch.randn(ids, dim, generator=g)[pids] + noise * torch.randn(nq + ng, dim, generator=g)
    labels = dict(q_pids=pids[:nq].numpy(), g_pids=pids[nq:].numpy(),
                  q_camids=camids[:nq].numpy(), g_camids=camids[nq:].numpy())
    return feats[:nq], feats[nq:], labels


def _check_exact(q, g, labels, metric, topk, ignore_camid=False, max_rank=10):
    """faiss path == evaluate_rank == brute force on the float64 distances; returns #fallbacks."""
    dist = compute_distance_matrix(q.double(), g.double(), metric)
    want = brute_force_rank(dist.numpy(), *labels.values(), max_rank, ignore_camid)
    np.testing.assert_array_equal(evaluate_rank(dist, **labels, max_rank=max_rank, ignore_camid=ignore_camid)[0],
                                  want[0])
    *got, num_fallback = evaluate_rank_faiss(q, g, **labels, metric=metric, max_rank=max_rank, topk=topk,
                                             ignore_camid=ignore_camid, chunk_size=7, return_num_fallback=True)
    for a, b in zip(got, want):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-12, rtol=0)
    return num_fallback


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_matches_brute_force_with_partial_fallback(metric):
    q, g, labels = _clustered(0, noise=0.3)
    num_valid = len(evaluate_rank(compute_distance_matrix(q.double(), g.double(), metric), **labels)[1])
    counts = [_check_exact(q, g, labels, metric, topk) for topk in (10, 25, 500)]
    assert counts[0] == num_valid       # positives beyond top-10: every query falls back
    assert 0 < counts[1] < num_valid    # mixed: some resolved from the search, some not
    assert counts[2] == 0               # topk >= G: the search is complete


def _signed_patterns(rng, n, dim=8, nnz=4):
    """Rows with ``nnz`` entries of +-1: norm exactly 2, so every distance is exact."""
    out = np.zeros((n, dim), np.float32)
    for row in out:
        row[rng.choice(dim, nnz, replace=False)] = rng.choice([-1.0, 1.0], nnz)
    return out


@pytest.mark.parametrize("ignore_camid", [False, True])
def test_exact_ties_duplicates_and_invalid_queries(ignore_camid):
    # Exactly representable distances: ties are real and must follow the gallery index.
    # Items copy their identity's pattern (some queries a random one); every 9th gallery
    # item is relabelled as a distractor identity, a negative tied with positives.
    rng = np.random.default_rng(1)
    ids = 6
    templates = _signed_patterns(rng, ids)
    g_pids, q_pids = rng.integers(0, ids, 150), rng.integers(0, ids, 25)
    g = templates[g_pids]
    q = np.where(rng.random((25, 1)) < 0.8, templates[q_pids], _signed_patterns(rng, 25))
    g_pids[::9] = 100 + np.arange(len(g_pids[::9]))
    q_pids[-2:] = 99  # no gallery match: skipped
    labels = dict(q_pids=q_pids, g_pids=g_pids, q_camids=rng.integers(0, 2, 25), g_camids=rng.integers(0, 2, 150))
    q, g = torch.from_numpy(q), torch.from_numpy(g)
    for metric in ("euclidean", "cosine"):
        counts = [_check_exact(q, g, labels, metric, topk, ignore_camid) for topk in (20, 60)]
        assert counts[1] < counts[0]


@pytest.mark.parametrize("topk", [10, 40])
def test_near_ties_below_faiss_precision(topk):
    # Every gallery item gets a distractor copy a few float32 ulps away: float32 (faiss's and
    # the fallback screen's) cannot order them, the float64 re-check decides.
    q, base, labels = _clustered(2, nq=20, ng=60, noise=0.2)
    g = torch.cat([base, base + 3e-7 * torch.randn_like(base)])
    labels["g_pids"] = np.concatenate([labels["g_pids"], 100 + np.arange(60)])
    labels["g_camids"] = np.concatenate([labels["g_camids"], labels["g_camids"]])
    for metric in ("cosine", "euclidean"):
        assert _check_exact(q, g, labels, metric, topk) < len(q) or topk == 10


def test_reid_evaluator_faiss_matches_float64_ranking_and_config():
    q, g, labels = _clustered(3, nq=20, ng=150, noise=0.4)
    cfg = get_cfg()
    cfg.TEST.FAISS.ENABLED = True
    cfg.TEST.FAISS.TOPK = 25
    ev = ReidEvaluator(cfg, num_query=20)
    assert isinstance(ev.ranking, FaissRanking)
    assert ev.ranking.options == FaissOptions(enabled=True, topk=25, use_gpu=True)
    feats = torch.cat([q, g])
    pids = torch.from_numpy(np.concatenate([labels["q_pids"], labels["g_pids"]]))
    camids = torch.from_numpy(np.concatenate([labels["q_camids"], labels["g_camids"]]))
    for s in range(0, len(feats), 32):
        ev.process({"targets": pids[s:s + 32], "camids": camids[s:s + 32]}, feats[s:s + 32])
    res = ev.evaluate()
    cmc, ap, inp = evaluate_rank(compute_distance_matrix(q.double(), g.double(), "cosine"), **labels)
    assert res["Rank-1"] == cmc[0] * 100 and res["Rank-10"] == cmc[9] * 100
    assert res["mAP"] == np.mean(ap) * 100 and res["mINP"] == np.mean(inp) * 100


def test_gpu_request_falls_back_to_cpu_index():
    q, g, labels = _clustered(4, nq=8, ng=50)
    a = evaluate_rank_faiss(q, g, **labels, topk=20, use_gpu=True)
    b = evaluate_rank_faiss(q, g, **labels, topk=20, use_gpu=False)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_faiss_is_ignored_when_every_distance_is_needed():
    q, g, labels = _clustered(5, nq=10, ng=60)
    feats = torch.cat([q, g])
    pids = torch.from_numpy(np.concatenate([labels["q_pids"], labels["g_pids"]]))
    camids = torch.from_numpy(np.concatenate([labels["q_camids"], labels["g_camids"]]))
    results = []
    for faiss_enabled in (False, True):
        cfg = get_cfg()
        cfg.TEST.RERANK.ENABLED, cfg.TEST.RERANK.K1, cfg.TEST.RERANK.K2 = True, 5, 2
        cfg.TEST.ROC_ENABLED = True
        cfg.TEST.FAISS.ENABLED, cfg.TEST.FAISS.TOPK = faiss_enabled, 5
        ev = ReidEvaluator(cfg, num_query=10)
        assert isinstance(ev.ranking, DenseRanking)
        ev.process({"targets": pids, "camids": camids}, feats)
        results.append(ev.evaluate())
    assert results[0] == results[1] and "TPR@FPR=1e-04" in results[1]
