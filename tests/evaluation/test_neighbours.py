import pytest
import torch

from fastreid.evaluation.distance import budget_chunk_rows
from fastreid.evaluation.neighbours import symmetric_topk


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("chunk_size", [1, 4, 9, 64])
def test_symmetric_topk_matches_dense_topk(largest, dtype, chunk_size):
    # chunk 1 and 4 < k: panels narrower than k, so some rows take all earlier scores.
    torch.manual_seed(chunk_size)
    x = torch.randn(37, 5, dtype=dtype)
    dense = x @ x.t()
    dense = (dense + dense.t()) / 2  # exactly symmetric, so panels equal the dense rows
    seen = torch.zeros_like(dense, dtype=torch.int64)

    def visit(a, b, panel):
        seen[a:b, a:] += 1

    val, idx = symmetric_topk(37, 6, lambda a, b: dense[a:b, a:].clone(), chunk_size, largest, visit)
    want_val, want_idx = dense.topk(6, dim=1, largest=largest)
    torch.testing.assert_close(val, want_val, rtol=0, atol=0)  # best first
    assert torch.equal(idx, want_idx)  # no ties in random data
    assert torch.equal(seen.triu(), torch.ones_like(seen).triu())  # upper triangle, each score once


def test_symmetric_topk_ties_keep_a_valid_set():
    x = torch.tensor([[0.0], [1.0], [1.0], [1.0], [3.0]])
    dist = (x - x.t()).abs()
    val, idx = symmetric_topk(5, 2, lambda a, b: dist[a:b, a:], 2, largest=False)
    assert torch.equal(val, dist.sort(1).values[:, :2])
    assert torch.equal(dist.gather(1, idx), val)
    assert (idx[1:4, 0] != idx[1:4, 1]).all()


def test_budget_chunk_rows():
    assert budget_chunk_rows(3368, 15913) == 3368  # Market: every query in one chunk
    assert budget_chunk_rows(11659, 82161) == 256 * 2**20 // (4 * 82161) == 816  # MSMT17
    assert budget_chunk_rows(10**6, 10**8) == 256  # floor for matmul efficiency
    assert budget_chunk_rows(5, 3, budget_bytes=8, min_rows=1) == 1
