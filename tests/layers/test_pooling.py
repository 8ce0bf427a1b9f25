import pytest
import torch

from fastreid.layers import POOLING_REGISTRY, build_pooling

SPELLINGS = [
    ("avgpool", "GlobalAvgPool"),
    ("maxpool", "GlobalMaxPool"),
    ("gempool", "GeneralizedMeanPooling"),
    ("gempoolP", "GeneralizedMeanPoolingP"),
    ("avgmaxpool", "AdaptiveAvgMaxPool"),
    ("clipavgpool", "ClipGlobalAvgPool"),
    ("identity", "Identity"),
    ("flatten", "Flatten"),
]


@pytest.mark.parametrize("alias,name", SPELLINGS)
def test_both_spellings_build_the_same_class(alias, name):
    assert type(build_pooling(alias)) is type(build_pooling(name)) is POOLING_REGISTRY.get(name)


def test_unknown_pooling_names_registry():
    with pytest.raises(KeyError, match="POOLING"):
        build_pooling("avgpol")


def test_pooling_values_against_formulas():
    x = torch.rand(2, 3, 4, 5) + 0.1
    mean, mx = x.mean((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
    torch.testing.assert_close(build_pooling("avgpool")(x), mean)
    torch.testing.assert_close(build_pooling("maxpool")(x), mx)
    torch.testing.assert_close(build_pooling("avgmaxpool")(x), mean + mx)
    torch.testing.assert_close(build_pooling("gempool")(x), x.pow(3).mean((2, 3), keepdim=True).pow(1 / 3))
    torch.testing.assert_close(build_pooling("clipavgpool")(x * 10), (x * 10).mean((2, 3), keepdim=True).clamp(0, 1))
    assert build_pooling("flatten")(x).shape == (2, 60, 1, 1)
    assert build_pooling("identity")(x) is x


def test_learnable_gem_p_gets_gradient_and_limits():
    gem = build_pooling("GeneralizedMeanPoolingP")
    x = torch.rand(2, 3, 4, 4) + 0.1
    gem(x).sum().backward()
    assert gem.p.grad is not None and gem.p.grad.abs().item() > 0
    with torch.no_grad():
        gem.p.fill_(1.0)
    torch.testing.assert_close(gem(x), x.mean((2, 3), keepdim=True))
