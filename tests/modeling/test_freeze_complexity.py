import pytest
from torch import nn

from fastreid.config import get_cfg
from fastreid.modeling import build_backbone
from fastreid.modeling.complexity import count_params_and_flops, measure_latency
from fastreid.modeling.freeze import freeze_layers, select_modules, unfreeze_layers


class _Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.heads = nn.BatchNorm1d(4)
        self.heads.bias.requires_grad_(False)  # a BNNeck: must stay frozen after unfreezing


def test_freeze_and_unfreeze_named_layers():
    model = _Toy().train()
    frozen = freeze_layers(model, ["backbone", ""])
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert not model.backbone.training and model.heads.training and model.heads.weight.requires_grad
    unfreeze_layers(model, frozen)
    assert all(p.requires_grad for p in model.backbone.parameters()) and model.backbone.training
    frozen = freeze_layers(model, ["heads"])
    assert frozen.params == ["heads.weight"]
    unfreeze_layers(model, frozen)
    assert not model.heads.bias.requires_grad


def test_unknown_layer_name():
    with pytest.raises(KeyError, match="backbone"):
        select_modules(_Toy(), ["backbon"])


def test_flops_of_toy_layers_match_closed_form():
    conv = nn.Conv2d(3, 5, kernel_size=3, padding=1, bias=False)
    _, flops = count_params_and_flops(conv, (8, 6), batch_size=2)
    assert flops == 2 * 5 * 8 * 6 * 3 * 3 * 3  # one multiply-add per kernel tap per output element

    class Lin(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3 * 4 * 2, 7)

        def forward(self, x):
            return self.fc(x.flatten(1))

    params, flops = count_params_and_flops(Lin(), (4, 2))
    assert params == 24 * 7 + 7 and flops == 24 * 7


def test_resnet50_complexity():
    cfg = get_cfg()
    cfg.MODEL.BACKBONE.PRETRAIN = False
    cfg.MODEL.BACKBONE.LAST_STRIDE = 2
    backbone = build_backbone(cfg)
    params, flops = count_params_and_flops(backbone, (64, 32))
    assert abs(params - 23.5e6) < 0.1e6
    # ~2.7 GMACs at 256x128 scale with the input area (64x32 is 1/16 of it); 4.1 GMACs at 224x224.
    assert abs(flops * 16 / 1e9 - 2.7) < 0.1
    assert measure_latency(backbone, (64, 32), iters=1, warmup=0) > 0
