"""evaluate_roc / RocAccumulator: chunked streaming against a sort-everything reference, and memory."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from fastreid.evaluation import evaluate_roc
from fastreid.evaluation.roc import RocAccumulator

FPRS = (0.0, 1e-3, 0.01, 0.1, 0.37, 1.0)


def brute_force_roc(dist, q_pids, g_pids, q_camids, g_camids, fprs, ignore_camid):
    """All negatives sorted in float64; threshold = the (floor(f * n) + 1)-th smallest."""
    dist = np.asarray(dist, dtype=np.float64)
    same = q_pids[:, None] == g_pids[None, :]
    pos_mask = same if ignore_camid else same & (q_camids[:, None] != g_camids[None, :])
    pos, neg = dist[pos_mask], np.sort(dist[~same])
    out = {}
    for f in fprs:
        m = int(f * neg.size)
        thr = neg[m] if m < neg.size else np.inf
        out[f"TPR@FPR={f:.0e}"] = float((pos < thr).mean()) if pos.size else float("nan")
    return out


def random_case(seed, num_q=23, num_g=61, num_ids=7, levels=None):
    """Random labels and distances; ``levels`` quantises distances to force many ties."""
    rng = np.random.default_rng(seed)
    dist = rng.random((num_q, num_g))
    if levels:
        dist = np.round(dist * levels) / levels
    labels = (rng.integers(0, num_ids, num_q), rng.integers(0, num_ids, num_g),
              rng.integers(0, 3, num_q), rng.integers(0, 3, num_g))
    return dist, labels


def assert_same(got, want):
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == want[key] or (np.isnan(got[key]) and np.isnan(want[key])), (key, got, want)


@pytest.mark.parametrize("ignore_camid", [False, True])
@pytest.mark.parametrize("levels", [None, 4, 16])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chunked_equals_brute_force(seed, levels, ignore_camid):
    dist, labels = random_case(seed, levels=levels)
    want = brute_force_roc(dist, *labels, FPRS, ignore_camid)
    for chunk_rows in (1, 2, 5, 23, 100, None):
        got = evaluate_roc(dist, *labels, fprs=FPRS, ignore_camid=ignore_camid, chunk_rows=chunk_rows)
        assert_same(got, want)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_torch_dtypes_equal_brute_force_of_the_same_values(dtype):
    dist, labels = random_case(3, num_q=17, num_g=40, levels=64)
    dist = torch.from_numpy(dist).to(dtype)
    want = brute_force_roc(dist.double().numpy(), *labels, FPRS, False)
    for chunk_rows in (1, 4, None):
        assert_same(evaluate_roc(dist, *labels, fprs=FPRS, chunk_rows=chunk_rows), want)


def test_nan_inf_and_no_positive_cases():
    dist, labels = random_case(4, levels=8)
    dist[0, :5], dist[3, 7:9], dist[5, 2] = np.nan, np.inf, -np.inf
    want = brute_force_roc(dist, *labels, FPRS, False)
    for chunk_rows in (1, 3, None):
        assert_same(evaluate_roc(dist, *labels, fprs=FPRS, chunk_rows=chunk_rows), want)
    # every identity distinct: no positives, TPR is NaN
    q_pids, g_pids = np.arange(4), np.arange(10, 16)
    out = evaluate_roc(np.random.rand(4, 6), q_pids, g_pids, np.zeros(4), np.ones(6), fprs=(0.1,))
    assert np.isnan(out["TPR@FPR=1e-01"])


def test_accumulator_chunks_in_any_order_and_dtype():
    """The evaluator feeds float32 torch chunks; order and dtype of chunks must not matter."""
    dist, labels = random_case(5, num_q=30, num_g=50, levels=32)
    want = brute_force_roc(dist, *labels, FPRS, False)
    acc = RocAccumulator(*labels, fprs=FPRS)
    for start, dtype in ((20, torch.float32), (0, torch.float64), (10, torch.float16)):
        acc.add(torch.from_numpy(dist[start:start + 10]).to(dtype), start)
    assert_same(acc.finalize(), want)


def test_clear_errors():
    dist, labels = random_case(6)
    with pytest.raises(ValueError, match="distmat has shape"):
        evaluate_roc(dist[:, 1:], *labels)
    with pytest.raises(ValueError, match="chunk_rows"):
        evaluate_roc(dist, *labels, chunk_rows=0)
    with pytest.raises(ValueError, match="fprs"):
        evaluate_roc(dist, *labels, fprs=(1.5,))
    with pytest.raises(ValueError, match="does not fit"):
        RocAccumulator(*labels).add(dist[:4], offset=21)


_MEMORY_PROBE = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    import torch
    from fastreid.evaluation import evaluate_roc

    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    num_q, num_g = 2000, 20000
    rng = np.random.default_rng(0)
    dist = rng.random((num_q, num_g), dtype=np.float32)
    labels = (rng.integers(0, 500, num_q), rng.integers(0, 500, num_g),
              rng.integers(0, 6, num_q), rng.integers(0, 6, num_g))
    evaluate_roc(dist[:50, :500], labels[0][:50], labels[1][:500], labels[2][:50], labels[3][:500])  # warm up
    before = peak()
    evaluate_roc(dist, *labels)
    print(json.dumps({"extra": peak() - before, "float64_copy": dist.size * 8}))
""")


def test_peak_memory_is_well_under_one_float64_copy():
    """ru_maxrss of a fresh process sees torch and numpy allocations alike."""
    proc = subprocess.run([sys.executable, "-c", _MEMORY_PROBE], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["extra"] < res["float64_copy"] / 3, res
