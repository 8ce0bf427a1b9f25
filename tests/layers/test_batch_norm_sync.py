import pytest
import torch
from torch import nn

from fastreid.layers.batch_norm import get_norm


@pytest.mark.parametrize("name", ["syncBN", "SyncBN"])
def test_sync_bn_is_plain_bn_without_cuda_and_sync_bn_with_it(name):
    layer = get_norm(name, 8)
    expected = nn.SyncBatchNorm if torch.cuda.is_available() else nn.BatchNorm2d
    assert type(layer) is expected
    assert layer(torch.randn(2, 8, 3, 3)).shape == (2, 8, 3, 3)
