import math

import pytest
import torch
import torch.nn.functional as F

from fastreid.layers import CLASSIFIER_REGISTRY, build_classifier


@pytest.mark.parametrize(
    "alias,name", [("linear", "Linear"), ("arcSoftmax", "ArcSoftmax"), ("circleSoftmax", "CircleSoftmax"),
                   ("cosSoftmax", "CosSoftmax")]
)
def test_aliases(alias, name):
    assert CLASSIFIER_REGISTRY.get(alias) is CLASSIFIER_REGISTRY.get(name)


def _explicit(name, cos, t, s, m):
    """Per-element margin formulas from the CosFace / ArcFace / circle-loss papers."""
    out = torch.empty_like(cos)
    for i in range(cos.size(0)):
        for k in range(cos.size(1)):
            c = cos[i, k].item()
            if name == "CosSoftmax":
                v = c - m if k == t[i] else c
            elif name == "ArcSoftmax":
                v = math.cos(math.acos(c) + m) if k == t[i] else c
            else:
                v = max(1 + m - c, 0) * (c - (1 - m)) if k == t[i] else max(c + m, 0) * (c - m)
            out[i, k] = s * v
    return out


@pytest.mark.parametrize("name", ["CosSoftmax", "ArcSoftmax", "CircleSoftmax"])
def test_margin_layers_match_formulas(name):
    torch.manual_seed(0)
    layer = build_classifier(name, 8, 5, scale=16.0, margin=0.3).double()
    feats, targets = torch.randn(6, 8, dtype=torch.float64), torch.randint(0, 5, (6,))
    cls_outputs, plain = layer(feats, targets)
    cos = F.normalize(feats) @ F.normalize(layer.weight).t()
    torch.testing.assert_close(plain, 16.0 * cos)
    torch.testing.assert_close(cls_outputs, _explicit(name, cos.detach(), targets, 16.0, 0.3), atol=1e-5, rtol=1e-5)


def test_linear_is_plain_matmul_and_ignores_scale():
    layer = build_classifier("Linear", 4, 3, scale=64.0, margin=0.35)
    x = torch.randn(2, 4)
    out, plain = layer(x, torch.tensor([0, 1]))
    torch.testing.assert_close(out, x @ layer.weight.t())
    torch.testing.assert_close(plain, out)


def test_arc_margin_is_finite_under_bf16_autocast():
    layer = build_classifier("ArcSoftmax", 4, 3, scale=16.0, margin=0.5)
    feats = layer.weight.detach()[:2].clone().requires_grad_(True)  # cosine exactly 1 with its own class
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = layer(feats, torch.tensor([0, 1]))
    out.float().sum().backward()
    assert torch.isfinite(feats.grad).all() and torch.isfinite(layer.weight.grad).all()
