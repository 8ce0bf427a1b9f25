import pytest
import torch
from torch import nn

from fastreid.layers import IBN, NORM_NAMES, NonLocal, SELayer, SplAtConv2d, get_norm


@pytest.mark.parametrize("name", NORM_NAMES)
def test_every_norm_builds_and_runs(name):
    norm = get_norm(name, 64)
    x = torch.randn(8, 64, 4, 4)
    assert norm(x).shape == x.shape


def test_unknown_norm_lists_choices():
    with pytest.raises(KeyError, match="GhostBN"):
        get_norm("LayerNormz", 8)


def test_bias_freeze_zeroes_and_freezes():
    bn = get_norm("BN", 16, bias_freeze=True)
    assert not bn.bias.requires_grad and bn.weight.requires_grad
    assert torch.count_nonzero(bn.bias) == 0


def test_ghost_bn_normalises_each_chunk():
    bn = get_norm("GhostBN", 3)
    x = torch.randn(8, 3, 2, 2) * 5 + 3
    y = bn(x)
    for chunk in y.chunk(4):
        torch.testing.assert_close(chunk.mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    assert bn.num_batches_tracked.item() == 1
    bn.eval()
    assert bn(x).shape == x.shape


def test_ibn_splits_instance_and_batch_norm():
    ibn = IBN(6)
    x = torch.randn(4, 6, 5, 5)
    y = ibn(x)
    torch.testing.assert_close(y[:, :3], nn.functional.instance_norm(x[:, :3]), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(y[:, 3:], nn.functional.batch_norm(x[:, 3:], None, None, training=True), atol=1e-5,
                               rtol=1e-4)


def test_nonlocal_starts_as_identity_and_se_gates():
    x = torch.randn(2, 8, 4, 3)
    torch.testing.assert_close(NonLocal(8).eval()(x), x)
    se = SELayer(32, reduction=16)
    x = torch.randn(2, 32, 3, 3)
    ratio = se(x) / x
    assert ((ratio > 0) & (ratio < 1)).all()


def test_split_attention_weights_sum_to_one():
    conv = SplAtConv2d(8, 8, radix=2, groups=1)
    # The grouped conv sees input halves per split: identical halves and weights give identical splits, and
    # softmax weights summing to 1 then give back the split itself.
    with torch.no_grad():
        conv.conv.weight[8:] = conv.conv.weight[:8]
    conv.eval()
    x = torch.randn(2, 4, 5, 5).repeat(1, 2, 1, 1)
    split = conv.relu(conv.bn0(conv.conv(x)))[:, :8]
    torch.testing.assert_close(conv(x), split)
