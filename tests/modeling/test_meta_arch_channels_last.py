"""MODEL.CHANNELS_LAST: same features and losses as the contiguous model, and every activation from the input
to the head's pooling stays channels-last (checked on the strides of each module's inputs and outputs)."""
from typing import Dict, List, Sequence

import pytest
import torch
from torch import nn

from fastreid.config import get_cfg
from fastreid.layers import IBN, InstanceNorm2d, NonLocal
from fastreid.modeling import build_model
from fastreid.modeling.backbones.shufflenet import channel_shuffle

# Tiny models covering the layers that touch the layout: plain blocks; IBN-a, SE, non-local, last stride 1 and
# learnable GeM with an embedding conv; the video model's frame flattening and temporal pooling (chunked in eval
# with the attention pool); MGN's branches and stripes; a Distiller's EMA teacher (a nested meta-architecture).
CASES: Dict[str, Sequence] = {
    "R18": ("MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.FEAT_DIM", 512),
    "R50-ibn-se-nl": ("MODEL.BACKBONE.DEPTH", "50x", "MODEL.BACKBONE.WITH_IBN", True, "MODEL.BACKBONE.WITH_SE", True,
                      "MODEL.BACKBONE.WITH_NL", True, "MODEL.BACKBONE.LAST_STRIDE", 1,
                      "MODEL.HEADS.POOL_LAYER", "GeneralizedMeanPoolingP", "MODEL.HEADS.EMBEDDING_DIM", 64),
    "video-attention": ("MODEL.META_ARCHITECTURE", "VideoBaseline", "MODEL.TEMPORAL_POOL", "attention",
                        "TEST.FRAME_CHUNK", 2, "MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.FEAT_DIM", 512),
    "video-max": ("MODEL.META_ARCHITECTURE", "VideoBaseline", "MODEL.TEMPORAL_POOL", "max",
                  "MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.FEAT_DIM", 512,
                  "MODEL.BACKBONE.WITH_IBN", True),
    "distiller-ema": ("MODEL.META_ARCHITECTURE", "Distiller", "KD.EMA.ENABLED", True, "MODEL.BACKBONE.DEPTH", "18x",
                      "MODEL.BACKBONE.FEAT_DIM", 512),
    "mgn-R18-ibn": ("MODEL.META_ARCHITECTURE", "MGN", "MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.FEAT_DIM", 512,
                    "MODEL.BACKBONE.WITH_IBN", True),
}


def _cfg(channels_last: bool, options: Sequence = CASES["R18"]):
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", "False", "MODEL.HEADS.NUM_CLASSES", "4",
                         "MODEL.CHANNELS_LAST", str(channels_last), *options])
    return cfg


def _images(case: str, seed: int = 0) -> torch.Tensor:
    shape = (2, 3, 3, 64, 32) if case.startswith("video") else (4, 3, 64, 32)
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 255


def _is_nhwc(t: torch.Tensor) -> bool:
    """Channels-last: C innermost in memory, then W, then H. Views of a channels-last map count (MGN's stripes of
    rows, IBN's halves of the channels): they are read in place, not converted."""
    s = t.stride()
    return t[:1].is_contiguous(memory_format=torch.channels_last) or s[1] == 1 < s[3] <= s[2]


def _is_spatial_map(t) -> bool:
    """A 4-D map whose layouts differ (a B x C x 1 x 1 or single-channel map is both at once)."""
    return isinstance(t, torch.Tensor) and t.dim() == 4 and t.size(1) > 1 and t.size(2) * t.size(3) > 1


def _tensors(value) -> List[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def layout_breaks(model: nn.Module, run) -> List[str]:
    """Run ``run()`` with forward hooks on every module of ``model``; return each module that takes or outputs a
    4-D map not in channels-last memory (``model``'s own input, the caller's images, may be in any layout), or
    that takes a channels-last map and returns a 4-D tensor that is not."""
    names = {m: n or type(model).__name__ for n, m in model.named_modules()}
    breaks: List[str] = []

    def check(module, inputs, output):
        nhwc_in = any(_is_spatial_map(t) and _is_nhwc(t) for t in _tensors(inputs))
        for t in _tensors(inputs) if module is not model else []:
            if _is_spatial_map(t) and not _is_nhwc(t):
                breaks.append(f"{names[module]} ({type(module).__name__}): input {tuple(t.shape)} strides {t.stride()}")
        for t in _tensors(output):
            if t.dim() == 4 and not _is_nhwc(t) and (_is_spatial_map(t) or nhwc_in):
                breaks.append(f"{names[module]} ({type(module).__name__}): output {tuple(t.shape)} strides "
                              f"{t.stride()}, channels-last input: {nhwc_in}")

    handles = [m.register_forward_hook(check) for m in model.modules()]
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return breaks


@pytest.mark.parametrize("case", sorted(CASES))
def test_channels_last_model_keeps_channels_last_from_input_to_pooling(case):
    torch.manual_seed(0)
    model = build_model(_cfg(True, CASES[case]))
    images = _images(case)
    batch = {"images": images, "targets": torch.arange(images.size(0)) % 2}
    model.eval()
    with torch.no_grad():
        assert layout_breaks(model, lambda: model(images)) == []
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert layout_breaks(model, lambda: model(images)) == []
    model.train()
    assert layout_breaks(model, lambda: model(batch)) == []


def test_layout_check_finds_a_module_that_leaves_channels_last():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Identity()).to(memory_format=torch.channels_last)
    model[1].forward = lambda x: x.contiguous()
    breaks = layout_breaks(model, lambda: model(torch.rand(1, 3, 8, 8).contiguous(memory_format=torch.channels_last)))
    assert len(breaks) == 2 and breaks[0].startswith("1 (Identity): output")
    assert layout_breaks(model, lambda: model(torch.rand(1, 3, 8, 8)))[0].startswith("0 (Conv2d): input")


@pytest.mark.parametrize("case", sorted(CASES))
def test_channels_last_model_gives_the_same_features_and_losses(case):
    torch.manual_seed(0)
    plain = build_model(_cfg(False, CASES[case]))
    torch.manual_seed(0)
    nhwc = build_model(_cfg(True, CASES[case]))
    first_conv = next(m for m in nhwc.backbone.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.weight.is_contiguous(memory_format=torch.channels_last)
    images = _images(case)
    plain.eval(), nhwc.eval()
    with torch.no_grad():
        torch.testing.assert_close(nhwc(images), plain(images), rtol=1e-4, atol=1e-4)
    plain.train(), nhwc.train()
    batch = {"images": images, "targets": torch.arange(images.size(0)) % 2}
    expected, losses = plain(batch), nhwc(batch)
    assert set(losses) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(losses[key], value, rtol=1e-4, atol=1e-4)


def _randomised(module: nn.Module) -> nn.Module:
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return module.eval()


# Layers that rebuild or copy a map, each given a channels-last input (some only in models the cases above skip).
LAYERS = {
    "InstanceNorm2d": lambda: _randomised(InstanceNorm2d(8, affine=True)),
    "IBN": lambda: _randomised(IBN(8)),
    "NonLocal-width-1": lambda: _randomised(NonLocal(8, inter_channels=1)),
    "NonLocal-width-4": lambda: _randomised(NonLocal(8)),
    "channel_shuffle": lambda: (lambda x: channel_shuffle(x, 2)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_keeps_a_channels_last_input_channels_last_with_the_same_values(name):
    layer = LAYERS[name]()
    x = torch.randn(2, 8, 5, 3, generator=torch.Generator().manual_seed(0))
    out = layer(x.contiguous(memory_format=torch.channels_last))
    assert _is_nhwc(out)
    torch.testing.assert_close(out, layer(x), rtol=1e-5, atol=1e-5)
    assert layer(x).is_contiguous()
