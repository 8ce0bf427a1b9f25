import numpy as np
import pytest
import torch

from fastreid.evaluation import evaluate_rank, is_cython_available
from reference import brute_force_rank

IMPLS = [pytest.param(True, id="cython"), pytest.param(False, id="vectorised")]


def _random_case(rng, ties, num_cams):
    q, g = int(rng.integers(1, 12)), int(rng.integers(1, 40))
    npid = int(rng.integers(1, 6))
    labels = dict(
        q_pids=rng.integers(-1, npid, q), g_pids=rng.integers(-1, npid, g),
        q_camids=rng.integers(0, num_cams, q), g_camids=rng.integers(0, num_cams, g))
    dist = rng.integers(0, 3, (q, g)).astype(np.float32) if ties else rng.random((q, g))
    return dist, labels


def _check(dist, labels, use_cython, ignore_camid=False, max_rank=10, chunk_size=None):
    try:
        ref = brute_force_rank(dist, labels["q_pids"], labels["g_pids"], labels["q_camids"],
                               labels["g_camids"], max_rank, ignore_camid)
    except RuntimeError:
        with pytest.raises(RuntimeError):
            evaluate_rank(dist, **labels, max_rank=max_rank, use_cython=use_cython, ignore_camid=ignore_camid)
        return
    out = evaluate_rank(dist, **labels, max_rank=max_rank, use_cython=use_cython,
                        ignore_camid=ignore_camid, chunk_size=chunk_size)
    for got, want in zip(out, ref):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-12, rtol=0)


def test_compiled_extension_is_built():
    assert is_cython_available()


@pytest.mark.parametrize("use_cython", IMPLS)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("num_cams", [1, 3])
def test_matches_brute_force(use_cython, ties, num_cams):
    rng = np.random.default_rng(7 + ties + 10 * num_cams)
    for _ in range(25):
        dist, labels = _random_case(rng, ties, num_cams)
        _check(dist, labels, use_cython, ignore_camid=bool(rng.integers(2)), chunk_size=3)


@pytest.mark.parametrize("use_cython", IMPLS)
def test_all_distances_equal_uses_index_order(use_cython):
    # With every distance tied, the order is the gallery index order.
    dist = np.zeros((1, 5), np.float32)
    labels = dict(q_pids=np.array([1]), g_pids=np.array([0, 1, 0, 1, 1]),
                  q_camids=np.array([0]), g_camids=np.array([1, 1, 1, 0, 1]))
    cmc, ap, inp = evaluate_rank(dist, **labels, max_rank=4, use_cython=use_cython)
    # kept order: g0(neg) g1(pos) g2(neg) g4(pos); g3 is same pid + same camera
    np.testing.assert_allclose(cmc, [0, 1, 1, 1])
    np.testing.assert_allclose(ap, [(1 / 2 + 2 / 4) / 2])
    np.testing.assert_allclose(inp, [2 / 4])


@pytest.mark.parametrize("use_cython", IMPLS)
def test_invalid_queries_are_skipped_and_logged(use_cython, caplog):
    dist = np.array([[0.1, 0.2], [0.3, 0.4]])
    labels = dict(q_pids=np.array([1, 2]), g_pids=np.array([1, 3]),
                  q_camids=np.array([0, 0]), g_camids=np.array([1, 0]))
    cmc, ap, inp = evaluate_rank(dist, **labels, use_cython=use_cython)
    assert len(ap) == 1 and len(cmc) == 2
    assert "1 of 2 queries have no valid gallery match" in caplog.text


def test_implementations_agree_on_larger_input_and_torch_tensor():
    rng = np.random.default_rng(3)
    q, g = 60, 700
    labels = dict(q_pids=rng.integers(0, 30, q), g_pids=rng.integers(0, 30, g),
                  q_camids=rng.integers(0, 4, q), g_camids=rng.integers(0, 4, g))
    dist = torch.from_numpy(rng.random((q, g), dtype=np.float32))
    a = evaluate_rank(dist, **labels, use_cython=True)
    b = evaluate_rank(dist, **labels, use_cython=False, chunk_size=16)
    np.testing.assert_array_equal(a[0], b[0])
    for x, y in zip(a[1:], b[1:]):
        np.testing.assert_allclose(x, y, atol=1e-12, rtol=0)


@pytest.mark.parametrize("use_cython", IMPLS)
def test_cuhk03_mode_is_seeded_and_bounded(use_cython):
    rng = np.random.default_rng(0)
    q, g = 20, 80
    labels = dict(q_pids=rng.integers(0, 10, q), g_pids=rng.integers(0, 10, g),
                  q_camids=np.zeros(q, int), g_camids=np.ones(g, int))
    dist = rng.random((q, g))
    cmc1, ap1, _ = evaluate_rank(dist, **labels, max_rank=10, use_metric_cuhk03=True, use_cython=use_cython)
    cmc2, _, _ = evaluate_rank(dist, **labels, max_rank=10, use_metric_cuhk03=True, use_cython=not use_cython)
    np.testing.assert_array_equal(cmc1, cmc2)
    # One sampled item per identity: 10 identities, so every valid query hits by rank 10.
    full_cmc, full_ap, _ = evaluate_rank(dist, **labels, max_rank=10)
    assert cmc1[9] == 1.0 and cmc1[8] < 1.0
    np.testing.assert_allclose(ap1, full_ap)


def test_cuhk03_single_identity_per_item_equals_standard_cmc():
    # With one gallery image per identity sampling changes nothing.
    rng = np.random.default_rng(1)
    g_pids = np.arange(30)
    labels = dict(q_pids=rng.integers(0, 30, 12), g_pids=g_pids,
                  q_camids=np.zeros(12, int), g_camids=np.ones(30, int))
    dist = rng.random((12, 30))
    a = evaluate_rank(dist, **labels, use_metric_cuhk03=True)
    b = evaluate_rank(dist, **labels)
    np.testing.assert_allclose(a[0], b[0], atol=1e-12)
