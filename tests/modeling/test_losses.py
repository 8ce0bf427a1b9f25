"""Each loss against a direct (loop) implementation of its formula, values and gradients, in float64."""
import math

import pytest
import torch

from fastreid.config import get_cfg
from fastreid.modeling.losses import (
    LOSS_REGISTRY,
    CrossEntropyLoss,
    build_losses,
    cross_entropy_loss,
    focal_loss,
    pairwise_circle_loss,
    pairwise_cosface_loss,
    triplet_loss,
)


def _grads(fn, x):
    x = x.clone().requires_grad_(True)
    value = fn(x)
    (grad,) = torch.autograd.grad(value, x)
    return value.detach(), grad


def _check(fast, loop, x):
    v1, g1 = _grads(fast, x)
    v2, g2 = _grads(loop, x)
    torch.testing.assert_close(v1, v2, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(g1, g2, rtol=1e-5, atol=1e-8)


def _softmax_row(row):
    exps = [torch.exp(v) for v in row]
    total = sum(exps)
    return [e / total for e in exps]


def _dist(a, b):
    return torch.sqrt(torch.clamp(((a - b) ** 2).sum(), min=1e-12))


def _cos(a, b):
    return (a * b).sum() / (a.norm() * b.norm())


LABELS = torch.tensor([0, 0, 1, 1, 2, 2, 2, 3])


@pytest.mark.parametrize("eps", [0.0, 0.1, -1.0])
def test_cross_entropy_matches_loop(eps):
    torch.manual_seed(0)
    logits, k, alpha = torch.randn(6, 5, dtype=torch.float64), 5, 0.2
    t = torch.tensor([0, 1, 4, 2, 2, 3])

    def loop(x):
        total = 0
        for i in range(x.size(0)):
            p = _softmax_row(x[i])
            e = eps if eps >= 0 else alpha * p[t[i]].detach()
            total = total - sum(((1 - e) if c == t[i] else e / (k - 1)) * torch.log(p[c]) for c in range(k))
        return total / x.size(0)

    _check(lambda x: cross_entropy_loss(x, t, eps, alpha), loop, logits)


def test_focal_matches_loop():
    torch.manual_seed(1)
    logits, t = torch.randn(6, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 0, 1])

    def loop(x):
        return sum(-0.25 * (1 - _softmax_row(x[i])[t[i]]) ** 2 * torch.log(_softmax_row(x[i])[t[i]])
                   for i in range(x.size(0))) / x.size(0)

    _check(lambda x: focal_loss(x, t, 0.25, 2.0), loop, logits)


@pytest.mark.parametrize("margin", [0.3, 0.0])
@pytest.mark.parametrize("norm_feat", [False, True])
def test_batch_hard_triplet_is_worst_triplet_per_anchor(margin, norm_feat):
    """Batch-hard = per anchor, the largest loss over ALL (positive, negative) pairs (the loss is monotone)."""
    torch.manual_seed(2)
    feats = torch.randn(len(LABELS), 6, dtype=torch.float64)

    def exhaustive(x):
        if norm_feat:
            x = torch.nn.functional.normalize(x, dim=1)
        per_anchor = []
        for a in range(len(LABELS)):
            worst = None
            for p in range(len(LABELS)):
                for n in range(len(LABELS)):
                    if LABELS[p] != LABELS[a] or LABELS[n] == LABELS[a]:
                        continue
                    diff = _dist(x[a], x[p]) - _dist(x[a], x[n])
                    value = torch.relu(diff + margin) if margin > 0 else torch.log1p(torch.exp(diff))
                    worst = value if worst is None or value > worst else worst
            per_anchor.append(worst)
        return sum(per_anchor) / len(per_anchor)

    _check(lambda x: triplet_loss(x, LABELS, margin, norm_feat, hard_mining=True), exhaustive, feats)


def test_weighted_triplet_matches_loop():
    torch.manual_seed(3)
    feats = torch.randn(len(LABELS), 5, dtype=torch.float64)

    def loop(x):
        total = 0
        for a in range(len(LABELS)):
            pos = [_dist(x[a], x[j]) for j in range(len(LABELS)) if LABELS[j] == LABELS[a]]
            neg = [_dist(x[a], x[j]) for j in range(len(LABELS)) if LABELS[j] != LABELS[a]]
            d_ap = sum(w * d for w, d in zip(_softmax_row(pos), pos))
            d_an = sum(w * d for w, d in zip(_softmax_row([-d for d in neg]), neg))
            total = total + torch.log1p(torch.exp(d_ap - d_an))
        return total / len(LABELS)

    _check(lambda x: triplet_loss(x, LABELS, 0.0, False, hard_mining=False), loop, feats)


def _pairwise_loop(x, per_pair_p, per_pair_n):
    # log(1 + Σ_p exp(l_p) · Σ_n exp(l_n)) per anchor with both kinds of pair, averaged.
    losses = []
    for a in range(len(LABELS)):
        pos = [per_pair_p(_cos(x[a], x[j])) for j in range(len(LABELS)) if j != a and LABELS[j] == LABELS[a]]
        neg = [per_pair_n(_cos(x[a], x[j])) for j in range(len(LABELS)) if LABELS[j] != LABELS[a]]
        if pos and neg:
            losses.append(torch.log(1 + sum(torch.exp(v) for v in pos) * sum(torch.exp(v) for v in neg)))
    return sum(losses) / len(losses)


def test_circle_loss_matches_loop():
    torch.manual_seed(4)
    m, g = 0.25, 16.0
    feats = torch.randn(len(LABELS), 5, dtype=torch.float64)
    loop = lambda x: _pairwise_loop(  # noqa: E731
        x,
        lambda s: -g * torch.clamp_min(1 + m - s.detach(), 0) * (s - (1 - m)),
        lambda s: g * torch.clamp_min(s.detach() + m, 0) * (s - m),
    )
    _check(lambda x: pairwise_circle_loss(x, LABELS, m, g), loop, feats)


def test_cosface_loss_matches_loop():
    torch.manual_seed(5)
    m, g = 0.25, 16.0
    feats = torch.randn(len(LABELS), 5, dtype=torch.float64)
    loop = lambda x: _pairwise_loop(x, lambda s: -g * s, lambda s: g * (s + m))  # noqa: E731
    _check(lambda x: pairwise_cosface_loss(x, LABELS, m, g), loop, feats)


def test_large_gamma_stays_finite():
    feats = torch.randn(len(LABELS), 16, requires_grad=True)
    for fn in (pairwise_circle_loss, pairwise_cosface_loss):
        value = fn(feats, LABELS, 0.25, 128.0)
        value.backward()
        assert math.isfinite(value.item()) and torch.isfinite(feats.grad).all()


NAMES_AND_TERMS = [("CrossEntropyLoss", "loss_cls"), ("FocalLoss", "loss_focal"), ("TripletLoss", "loss_triplet"),
                   ("CircleLoss", "loss_circle"), ("CosFaceLoss", "loss_cosface")]


def test_registered_losses_read_config_and_return_weighted_named_scalars():
    cfg = get_cfg()
    cfg.MODEL.LOSSES.NAME = tuple(n for n, _ in NAMES_AND_TERMS)
    for group in ("CE", "FL", "TRI", "CIRCLE", "COSFACE"):
        cfg.MODEL.LOSSES[group].SCALE = 0.5
    cfg.MODEL.LOSSES.CE.EPSILON = 0.1
    losses = build_losses(cfg)
    torch.manual_seed(6)
    outputs = {"cls_outputs": torch.randn(8, 4), "features": torch.randn(8, 6)}
    for (name, term), loss in zip(NAMES_AND_TERMS, losses):
        assert type(loss) is LOSS_REGISTRY.get(name)
        out = loss(outputs, LABELS)
        assert list(out) == [term] and out[term].dim() == 0
    expected = 0.5 * cross_entropy_loss(outputs["cls_outputs"], LABELS, 0.1)
    torch.testing.assert_close(losses[0](outputs, LABELS)["loss_cls"], expected)


def test_unknown_loss_name_fails_with_registry_message():
    cfg = get_cfg()
    cfg.MODEL.LOSSES.NAME = ("TripletLos",)
    with pytest.raises(KeyError, match="Did you mean 'TripletLoss'"):
        build_losses(cfg)


def test_list_of_part_logits_averages_the_loss_over_parts():
    torch.manual_seed(0)
    parts, targets = [torch.randn(6, 4) for _ in range(3)], torch.tensor([0, 1, 2, 3, 0, 1])
    loss = CrossEntropyLoss(eps=0.1, scale=2.0)
    got = loss({"cls_outputs": parts}, targets)["loss_cls"]
    expected = sum(cross_entropy_loss(p, targets, 0.1) for p in parts) / 3 * 2.0
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
