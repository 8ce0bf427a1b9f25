import logging

import pytest
import torch
import torch.nn.functional as F

from fastreid.config import get_cfg
from fastreid.modeling import build_backbone
from fastreid.modeling.backbones.vit import Attention, VisionTransformer, load_vit_pretrained
from fastreid.modeling.complexity import count_params_and_flops

TINY = dict(img_size=(48, 32), stride_size=(12, 12), embed_dim=32, depth=2, num_heads=4)


def _tiny(**kwargs) -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(**{**TINY, **kwargs})


def _cfg(**backbone):
    cfg = get_cfg()
    cfg.MODEL.BACKBONE.NAME = "build_vit_backbone"
    cfg.MODEL.BACKBONE.DEPTH = "base"
    cfg.MODEL.BACKBONE.FEAT_DIM = 768
    cfg.MODEL.BACKBONE.PRETRAIN = False
    for key, value in backbone.items():
        cfg.MODEL.BACKBONE[key] = value
    return cfg


def test_output_shape_grid_and_pos_interpolation():
    model = _tiny().eval()
    # overlapping patches: ((48-16)//12+1, (32-16)//12+1)
    assert model.grid_size == (3, 2) and model.pos_embed.shape == (1, 1 + 6, 32)
    assert model.out_channels == 32
    assert model(torch.rand(2, 3, 48, 32)).shape == (2, 32, 1, 1)
    assert model(torch.rand(3, 3, 64, 16)).shape == (3, 32, 1, 1)  # 5×1 grid, pos embedding interpolated


def test_gradients_reach_every_parameter_at_another_size():
    model = _tiny(drop_path_rate=0.2).train()
    model(torch.rand(2, 3, 40, 40)).square().sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad


@pytest.mark.parametrize("qk_scale", [None, 0.05])
def test_sdpa_attention_equals_the_explicit_formula(qk_scale):
    torch.manual_seed(0)
    attn = Attention(32, 4, qkv_bias=True, qk_scale=qk_scale).eval()
    x = torch.randn(2, 7, 32)
    b, n, d = x.shape
    q, k, v = attn.qkv(x).reshape(b, n, 3, 4, 8).permute(2, 0, 3, 1, 4)
    scale = qk_scale if qk_scale is not None else 8**-0.5
    weights = torch.softmax(q @ k.transpose(-2, -1) * scale, dim=-1)
    expected = attn.proj((weights @ v).transpose(1, 2).reshape(b, n, d))
    torch.testing.assert_close(attn(x), expected, rtol=1e-5, atol=1e-6)


def test_drop_path_rates_rise_linearly_and_only_train_mode_is_random():
    model = _tiny(depth=5, drop_path_rate=0.4)
    assert [round(b.drop_path.rate, 6) for b in model.blocks] == [0.0, 0.1, 0.2, 0.3, 0.4]
    x = torch.rand(8, 3, 48, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        model.train()
        assert not torch.allclose(model(x), model(x))


def test_sie_adds_a_scaled_camera_embedding():
    model = _tiny(num_cameras=3, sie_coe=2.0).eval()
    x = torch.rand(2, 3, 48, 32)
    with pytest.raises(ValueError, match="camera_ids"):
        model(x)
    with torch.no_grad():
        a = model(x, torch.tensor([0, 1]))
        model.sie_embed.zero_()
        b = model(x, torch.tensor([0, 1]))
    assert a.shape == (2, 32, 1, 1) and not torch.allclose(a, b)


def test_small_is_fast_reids_variant():
    cfg = _cfg(DEPTH="small")
    cfg.INPUT.SIZE_TRAIN = [32, 16]
    model = build_backbone(cfg)
    attn = model.blocks[0].attn
    assert len(model.blocks) == 8 and attn.num_heads == 8 and attn.qkv.bias is None
    assert attn.scale == 768**-0.5 and model.blocks[0].mlp.fc1.out_features == 3 * 768


def test_unknown_depth_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"\['base', 'small'\]"):
        build_backbone(_cfg(DEPTH="huge"))


def _timm_state(dim=32, depth=2, grid=4):
    """A fake timm/jx ViT state_dict with tiny dims, a grid×grid position grid and an ImageNet head."""
    g = torch.Generator().manual_seed(1)
    state = {
        "cls_token": torch.randn(1, 1, dim, generator=g),
        "pos_embed": torch.randn(1, 1 + grid * grid, dim, generator=g),
        "patch_embed.proj.weight": torch.randn(dim, 3, 16, 16, generator=g),
        "patch_embed.proj.bias": torch.randn(dim, generator=g),
        "norm.weight": torch.randn(dim, generator=g),
        "norm.bias": torch.randn(dim, generator=g),
        "head.weight": torch.randn(10, dim, generator=g),
        "head.bias": torch.randn(10, generator=g),
    }
    shapes = {
        "norm1.weight": (dim,), "norm1.bias": (dim,), "attn.qkv.weight": (3 * dim, dim), "attn.qkv.bias": (3 * dim,),
        "attn.proj.weight": (dim, dim), "attn.proj.bias": (dim,), "norm2.weight": (dim,), "norm2.bias": (dim,),
        "mlp.fc1.weight": (4 * dim, dim), "mlp.fc1.bias": (4 * dim,), "mlp.fc2.weight": (dim, 4 * dim),
        "mlp.fc2.bias": (dim,),
    }
    for i in range(depth):
        for name, shape in shapes.items():
            state[f"blocks.{i}.{name}"] = torch.randn(shape, generator=g)
    return state


def test_timm_weights_load_by_name_with_a_resized_position_grid(tmp_path, caplog):
    state = _timm_state()
    path = str(tmp_path / "vit.pth")
    torch.save(state, path)
    model = _tiny()
    with caplog.at_level(logging.WARNING, logger="fastreid.modeling.pretrained"):
        incompatible = load_vit_pretrained(model, path)
    assert sorted(incompatible.unexpected) == ["head.bias", "head.weight"]
    assert not incompatible.missing and not incompatible.shape_mismatch
    assert "head." not in caplog.text  # the classifier is expected, not reported as a problem
    own = model.state_dict()
    for key in ("cls_token", "patch_embed.proj.weight", "blocks.1.attn.qkv.weight", "blocks.0.mlp.fc2.bias"):
        assert torch.equal(own[key], state[key]), key
    grid = state["pos_embed"][:, 1:].reshape(1, 4, 4, 32).permute(0, 3, 1, 2)
    resized = F.interpolate(grid, size=(3, 2), mode="bilinear", align_corners=False).flatten(2).transpose(1, 2)
    torch.testing.assert_close(own["pos_embed"], torch.cat([state["pos_embed"][:, :1], resized], 1))


def test_pretrain_path_goes_through_the_builder_and_reports_mismatches(tmp_path, caplog):
    state = _timm_state(dim=768, depth=1, grid=2)
    path = str(tmp_path / "jx.pth")
    torch.save({"model": state}, path)
    cfg = _cfg(DEPTH="base", PRETRAIN=True, PRETRAIN_PATH=path, DROP_PATH_RATIO=0.0)
    cfg.INPUT.SIZE_TRAIN = [48, 16]
    with caplog.at_level(logging.WARNING, logger="fastreid.modeling.pretrained"):
        model = build_backbone(cfg)
    assert torch.equal(model.blocks[0].attn.proj.weight, state["blocks.0.attn.proj.weight"])
    assert model.pos_embed.shape == (1, 1 + 3 * 1, 768)
    # blocks 1-11 are absent from the fake file: listed in the readable table
    assert "missing in file" in caplog.text and "blocks.11.mlp.fc2.weight" in caplog.text


def test_pretrain_without_a_file_gives_the_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match="jx_vit_base_p16_224-80ecf9dd.pth.*PRETRAIN False"):
        build_backbone(_cfg(PRETRAIN=True))
    with pytest.raises(FileNotFoundError, match="PRETRAIN_PATH"):
        build_backbone(_cfg(PRETRAIN=True, PRETRAIN_PATH=str(tmp_path / "absent.pth")))


def test_vit_base_parameters_and_flops():
    cfg = _cfg(DEPTH="base")
    model = build_backbone(cfg)
    assert model.out_channels == 768 and len(model.blocks) == 12
    assert [b.drop_path.rate for b in (model.blocks[0], model.blocks[-1])] == [0.0, pytest.approx(0.1)]
    params, flops = count_params_and_flops(model, (64, 32))
    # 256×128 layout (1 + 16·8 positions); the classifier is in the heads, not here
    assert params == 85_746_432
    # fvcore MACs at 64×32 (4×2 patches + cls = 9 tokens): per block 12·D² per token in the Linear layers,
    # the patch convolution, 5 per element in the 25 LayerNorms, 4 per output of the bilinear pos resize.
    # and q·kᵀ plus attention·v (2·N²·D per block, counted by fastreid's handle for scaled_dot_product_attention).
    tokens, d = 9, 768
    expected = (12 * tokens * 12 * d * d + 8 * d * 3 * 16 * 16 + 25 * 5 * tokens * d + 4 * 8 * d
                + 12 * 2 * tokens * tokens * d)
    assert flops == expected
