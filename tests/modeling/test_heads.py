import pytest
import torch

from fastreid.config import get_cfg
from fastreid.modeling import build_heads
from fastreid.modeling.heads import EmbeddingHead


def _cfg(**heads):
    cfg = get_cfg()
    cfg.MODEL.HEADS.NUM_CLASSES = 5
    for key, value in heads.items():
        cfg.MODEL.HEADS[key] = value
    return cfg


def test_from_config_equals_explicit_arguments():
    cfg = _cfg(EMBEDDING_DIM=16, POOL_LAYER="gempoolP", CLS_LAYER="circleSoftmax", NECK_FEAT="after")
    torch.manual_seed(0)
    a = build_heads(cfg, 32)
    torch.manual_seed(0)
    b = EmbeddingHead(feat_dim=32, embedding_dim=16, num_classes=5, neck_feat="after", pool_type="gempoolP",
                      cls_type="circleSoftmax", scale=cfg.MODEL.HEADS.SCALE, margin=cfg.MODEL.HEADS.MARGIN)
    assert repr(a) == repr(b)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


@pytest.mark.parametrize("neck_feat", ["before", "after"])
@pytest.mark.parametrize("embedding_dim", [0, 8])
def test_train_and_eval_outputs(neck_feat, embedding_dim):
    head = build_heads(_cfg(NECK_FEAT=neck_feat, EMBEDDING_DIM=embedding_dim), 12)
    fmap, targets = torch.randn(4, 12, 4, 2), torch.tensor([0, 0, 3, 3])
    out = head(fmap, targets)
    dim = embedding_dim or 12
    assert out["cls_outputs"].shape == out["pred_class_logits"].shape == (4, 5)
    pooled = fmap.mean((2, 3))
    if neck_feat == "before":
        torch.testing.assert_close(out["features"], pooled)
    else:
        assert out["features"].shape == (4, dim)
    head.eval()
    feat = head(fmap)
    assert feat.shape == (4, dim)
    if embedding_dim == 0:
        bn = head.bottleneck[0]
        torch.testing.assert_close(feat, (pooled - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight)


def test_bnneck_bias_is_frozen_at_zero():
    head = build_heads(_cfg(), 8)
    bn = head.bottleneck[-1]
    assert not bn.bias.requires_grad and torch.count_nonzero(bn.bias) == 0


def test_margin_only_in_cls_outputs():
    head = build_heads(_cfg(CLS_LAYER="CosSoftmax", SCALE=10, MARGIN=0.5), 8)
    out = head(torch.randn(4, 8, 2, 2), torch.tensor([0, 1, 2, 3]))
    diff = out["pred_class_logits"] - out["cls_outputs"]
    expected = torch.zeros(4, 5)
    expected[range(4), [0, 1, 2, 3]] = 5.0
    torch.testing.assert_close(diff, expected)


def test_clas_head_returns_logits_in_eval():
    head = build_heads(_cfg(NAME="ClasHead"), 8).eval()
    assert head(torch.randn(3, 8, 2, 2)).shape == (3, 5)


def test_unknown_head_and_pooling():
    with pytest.raises(KeyError, match="REID_HEADS"):
        build_heads(_cfg(NAME="EmbedingHead"), 8)
    with pytest.raises(KeyError, match="POOLING"):
        build_heads(_cfg(POOL_LAYER="meanpool"), 8)
