import pytest
import torch
from torch import nn

from fastreid.config import get_cfg
from fastreid.solver import OPTIMIZER_REGISTRY, build_grad_clipper, build_optimizer


class _Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.heads = nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3))
        self.frozen = nn.Linear(2, 2)
        self.frozen.weight.requires_grad_(False)


def _cfg(**solver):
    cfg = get_cfg()
    s = dict(OPT="SGD", BASE_LR=0.1, BIAS_LR_FACTOR=2.0, HEADS_LR_FACTOR=10.0, WEIGHT_DECAY=1e-4,
             WEIGHT_DECAY_BIAS=0.0, WEIGHT_DECAY_NORM=0.5, MOMENTUM=0.9, NESTEROV=True)
    s.update(solver)
    for k, v in s.items():
        setattr(cfg.SOLVER, k, v)
    return cfg


def _hyper(opt):
    return {id(p): (g["lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}


def test_param_groups_lr_and_weight_decay():
    m = _Toy()
    opt = build_optimizer(_cfg(), m)
    h = _hyper(opt)
    expected = {
        m.backbone[0].weight: (0.1, 1e-4),
        m.backbone[0].bias: (0.2, 0.0),
        m.backbone[1].weight: (0.1, 0.5),
        m.backbone[1].bias: (0.2, 0.0),  # bias rules win over norm rules
        m.heads[0].weight: (1.0, 1e-4),
        m.heads[0].bias: (2.0, 0.0),
        m.heads[1].weight: (1.0, 0.5),
        m.frozen.weight: (0.1, 1e-4),  # frozen params are kept for hooks that unfreeze them
    }
    for p, (lr, wd) in expected.items():
        assert h[id(p)][0] == pytest.approx(lr) and h[id(p)][1] == wd
    assert len(h) == len(list(m.parameters()))
    # one group per distinct (lr, wd)
    assert len(opt.param_groups) == len({v for v in h.values()})
    assert isinstance(opt, torch.optim.SGD)
    assert opt.defaults["momentum"] == 0.9 and opt.defaults["nesterov"]


def test_other_optimizers_by_name_and_registry():
    assert isinstance(build_optimizer(_cfg(OPT="AdamW"), _Toy()), torch.optim.AdamW)
    assert isinstance(build_optimizer(_cfg(OPT="Adam"), _Toy()), torch.optim.Adam)
    assert build_optimizer(_cfg(OPT="RMSprop"), _Toy()).defaults["momentum"] == 0.9
    assert build_optimizer(_cfg(OPT="SGD", MOMENTUM=0.0), _Toy()).defaults["nesterov"] is False

    @OPTIMIZER_REGISTRY.register()
    class ToyOpt(torch.optim.SGD):
        pass

    try:
        assert isinstance(build_optimizer(_cfg(OPT="ToyOpt"), _Toy()), ToyOpt)
    finally:
        OPTIMIZER_REGISTRY._obj_map.pop("ToyOpt")
    with pytest.raises(ValueError, match="SOLVER.OPT 'Nope'"):
        build_optimizer(_cfg(OPT="Nope"), _Toy())


@pytest.mark.parametrize("kind", ["value", "norm", "full_model"])
def test_grad_clipper(kind):
    cfg = get_cfg()
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = True
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = kind
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 1.0
    a, b = nn.Parameter(torch.zeros(4)), nn.Parameter(torch.zeros(4))
    a.grad = torch.tensor([3.0, -4.0, 0.0, 0.0])  # norm 5
    b.grad = torch.tensor([0.5, 0.0, 0.0, 0.0])
    build_grad_clipper(cfg)([a, b])
    if kind == "value":
        assert a.grad.tolist() == [1.0, -1.0, 0.0, 0.0] and b.grad.tolist() == [0.5, 0, 0, 0]
    elif kind == "norm":  # per parameter
        assert a.grad.norm().item() == pytest.approx(1.0, rel=1e-4) and b.grad[0].item() == 0.5
    else:
        total = (25 + 0.25) ** 0.5
        assert torch.cat([a.grad, b.grad]).norm().item() == pytest.approx(1.0, rel=1e-4)
        assert b.grad[0].item() == pytest.approx(0.5 / total, rel=1e-4)
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = False
    assert build_grad_clipper(cfg) is None
