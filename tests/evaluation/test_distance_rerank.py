import numpy as np
import pytest
import torch

from fastreid.evaluation import average_query_expansion, compute_distance_matrix, evaluate_roc, re_ranking
from reference import dense_aqe, dense_re_ranking


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_distance_matches_formula_across_chunks(metric):
    torch.manual_seed(0)
    q, g = torch.randn(13, 8, dtype=torch.float64), torch.randn(21, 8, dtype=torch.float64)
    got = compute_distance_matrix(q, g, metric, chunk_size=4)
    if metric == "cosine":
        qn, gn = q / q.norm(dim=1, keepdim=True), g / g.norm(dim=1, keepdim=True)
        want = 1 - qn @ gn.t()
    else:
        want = ((q[:, None] - g[None]) ** 2).sum(-1)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


def test_unknown_metric_fails():
    with pytest.raises(ValueError, match="Unknown distance metric"):
        compute_distance_matrix(torch.randn(2, 3), torch.randn(2, 3), "hamming")


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("k1,k2", [(20, 6), (5, 1), (7, 3)])
@pytest.mark.parametrize("chunk_size", [5, 16, 128])
def test_re_ranking_matches_dense_original(metric, k1, k2, chunk_size):
    # chunk 5: many panels, the last ones narrower than the candidate lists; 128: one panel.
    torch.manual_seed(k1 + k2)
    q, g = torch.randn(25, 16), torch.randn(70, 16)
    q[:8] = g[:8] + 0.1 * torch.randn(8, 16)  # some true matches
    got = re_ranking(q, g, metric, k1, k2, 0.3, chunk_size=chunk_size).numpy()
    d = lambda a, b: compute_distance_matrix(a, b, metric).numpy()  # noqa: E731
    want = dense_re_ranking(d(q, g), d(q, q), d(g, g), k1, k2, 0.3)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("chunk_size", [3, 7, 64])
def test_average_query_expansion_matches_dense_formula(chunk_size):
    # chunk 3 < qe_k: a panel gives later rows fewer candidates than k.
    torch.manual_seed(1)
    q, g = torch.randn(9, 12), torch.randn(31, 12)
    q_in, g_in = q.clone(), g.clone()
    got_q, got_g = average_query_expansion(q, g, qe_times=2, qe_k=4, alpha=3.0, chunk_size=chunk_size)
    assert torch.equal(q, q_in) and torch.equal(g, g_in)  # inputs untouched
    want_q, want_g = dense_aqe(q.numpy(), g.numpy(), 2, 4, 3.0)
    np.testing.assert_allclose(got_q.numpy(), want_q, atol=1e-5)
    np.testing.assert_allclose(got_g.numpy(), want_g, atol=1e-5)


def test_roc_on_hand_built_distances():
    # 1 query, pid 0 camera 0; gallery: two positives (other camera), one junk, 3 negatives.
    dist = np.array([[0.1, 0.5, 0.05, 0.2, 0.3, 0.9]])
    out = evaluate_roc(dist, np.array([0]), np.array([0, 0, 0, 1, 2, 3]), np.array([0]),
                       np.array([1, 1, 0, 1, 1, 1]), fprs=(0.0, 0.34, 0.67))
    # negatives sorted: 0.2, 0.3, 0.9; positives 0.1, 0.5 (0.05 is junk)
    assert out["TPR@FPR=0e+00"] == 0.5     # accept d < 0.2
    assert out["TPR@FPR=3e-01"] == 0.5     # 1 false positive allowed: d < 0.3
    assert out["TPR@FPR=7e-01"] == 1.0     # 2 allowed: d < 0.9
