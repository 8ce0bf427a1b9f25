"""RepVGG: fast-reid's variant table, the backbone contract, train→deploy fusion parity and weight names."""
import pytest
import torch
from torch import nn

from fastreid.config import get_cfg
from fastreid.modeling.backbones import build_backbone, model_zoo, zoo_entry
from fastreid.modeling.backbones.repvgg import RepVGG, RepVGGBlock, repvgg_variant, switch_to_deploy


def _cfg(**backbone):
    cfg = get_cfg()
    cfg.MODEL.BACKBONE.NAME = "build_repvgg_backbone"
    cfg.MODEL.BACKBONE.PRETRAIN = False
    for key, value in backbone.items():
        setattr(cfg.MODEL.BACKBONE, key, value)
    return cfg


def _randomise_norms(model: nn.Module) -> None:
    """Non-trivial running statistics and affine parameters, so the fusion has something to get wrong."""
    generator = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=generator) - 0.5)


# The RepVGG paper's parameter counts (millions) of the deployed ImageNet models, 1000-class linear layer included.
@pytest.mark.parametrize("depth, channels, paper_params_m", [("A0", 1280, 8.30), ("B1g4", 2048, 36.12)])
def test_variants_build_and_match_published_sizes(depth, channels, paper_params_m):
    backbone = build_backbone(_cfg(DEPTH=depth, LAST_STRIDE=1, FEAT_DIM=channels))
    assert backbone.out_channels == channels
    out = backbone(torch.randn(2, 3, 64, 32))
    assert out.shape == (2, channels, 4, 2)  # stride 16 with last stride 1
    out.mean().backward()
    switch_to_deploy(backbone)
    params = sum(p.numel() for p in backbone.parameters()) + channels * 1000 + 1000
    assert params / 1e6 == pytest.approx(paper_params_m, abs=0.01)


def test_grouped_variants_group_every_other_block():
    model = repvgg_variant("B1g2")
    groups = [b.groups for stage in (model.stage1, model.stage2, model.stage3, model.stage4) for b in stage]
    assert groups == [1 if i % 2 else 2 for i in range(1, len(groups) + 1)]
    assert model.stage0.groups == 1


def test_unknown_depth_names_the_variants():
    with pytest.raises(KeyError, match="'C9'.*A0.*B3g4"):
        build_backbone(_cfg(DEPTH="C9"))


@pytest.mark.parametrize("groups_map", [None, {2: 2, 4: 4}])
def test_fusion_keeps_eval_outputs(groups_map):
    torch.manual_seed(0)
    model = RepVGG((1, 2, 2, 1), (0.5, 0.5, 0.5, 0.5), groups_map=groups_map, last_stride=1)
    _randomise_norms(model)
    model.eval()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        before = model(x)
        model.switch_to_deploy()
        after = model(x)
    assert all(b.deployed for b in model.modules() if isinstance(b, RepVGGBlock))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def test_fusion_of_a_published_variant_inside_a_reid_model():
    torch.manual_seed(0)
    model = nn.Sequential(repvgg_variant("A0"), nn.AdaptiveAvgPool2d(1))
    _randomise_norms(model)
    model.eval()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        before = model(x)
        assert switch_to_deploy(model) is model
        after = model(x)
    # Float32 sums over 22 fused blocks: 1e-5 relative to the output's scale.
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5 * before.abs().max().item())
    with torch.no_grad():
        switch_to_deploy(model)  # a second call is a no-op
    torch.testing.assert_close(model(x), after)


def test_fusion_refuses_norms_without_running_statistics():
    block = RepVGGBlock(32, 32, norm="GN")
    with pytest.raises(TypeError, match="GroupNorm.*MODEL.BACKBONE.NORM"):
        block.switch_to_deploy()


def test_published_train_and_deploy_weights_load_by_name():
    trained = RepVGG((1, 1, 1, 1), (0.5, 0.5, 0.5, 0.5))
    names = set(trained.state_dict())
    # RepVGG's release layout: stageN.i.rbr_dense.conv / .bn, rbr_1x1, rbr_identity.
    assert {"stage0.rbr_dense.conv.weight", "stage0.rbr_1x1.bn.running_var",
            "stage1.0.rbr_dense.bn.weight"} <= names
    deployed = RepVGG((1, 1, 1, 1), (0.5, 0.5, 0.5, 0.5), deploy=True)
    _randomise_norms(trained)
    trained.eval().switch_to_deploy()
    missing, unexpected = deployed.load_state_dict(trained.state_dict())
    assert not missing and not unexpected
    assert "stage4.0.rbr_reparam.bias" in deployed.state_dict()


def test_pretrained_file_from_path_ignores_the_classifier(tmp_path):
    source = repvgg_variant("A0")
    state = {**source.state_dict(), "linear.weight": torch.zeros(1000, 1280), "linear.bias": torch.zeros(1000)}
    path = tmp_path / "RepVGG-A0-train.pth"
    torch.save(state, path)
    backbone = build_backbone(_cfg(DEPTH="A0", PRETRAIN=True, PRETRAIN_PATH=str(path)))
    assert torch.equal(backbone.stage3[5].rbr_dense.conv.weight, source.stage3[5].rbr_dense.conv.weight)


def test_zoo_names():
    names = [e.name for e in model_zoo() if e.option("MODEL.BACKBONE.NAME") == "build_repvgg_backbone"]
    # fast-reid's DEPTH names, lower-cased.
    assert names == ["repvgg_" + d.lower() for d in
                     ("A0", "A1", "A2", "B0", "B1", "B1g2", "B1g4", "B2", "B2g2", "B2g4", "B3", "B3g2", "B3g4")]
    entry = zoo_entry("repvgg_b1g2")
    assert entry.option("MODEL.BACKBONE.NAME") == "build_repvgg_backbone"
    assert entry.option("MODEL.BACKBONE.DEPTH") == "B1g2"
    assert entry.option("MODEL.BACKBONE.FEAT_DIM") == 2048
    assert zoo_entry("repvgg_a0").option("MODEL.BACKBONE.FEAT_DIM") == 1280
