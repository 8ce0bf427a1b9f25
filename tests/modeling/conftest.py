"""Model tests run single-threaded: their tensors are tiny, and on a shared 2-core machine intra-op threads
only add spin-waiting (a ResNet-50 step is ~10x slower with 2 threads under load than with 1)."""
import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
