"""Temporal pooling (avg / max / attention) and VideoBaseline in training, eval and the chunked eval path."""
import pytest
import torch
from torch import nn

from fastreid.config import get_cfg
from fastreid.modeling import BACKBONE_REGISTRY, build_model
from fastreid.modeling.meta_arch import Baseline, VideoBaseline
from fastreid.modeling.temporal_pool import (TEMPORAL_POOL_REGISTRY, TemporalAttentionPool, TemporalAvgPool,
                                             TemporalMaxPool, TemporalPool, build_temporal_pool)
from fastreid.utils.events import EventStorage


class VideoTestBackbone(nn.Sequential):
    """One strided conv: B x 3 x H x W -> B x 8 x H/2 x W/2."""

    out_channels = 8

    def __init__(self, cfg):
        super().__init__(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU())


@pytest.fixture(scope="module", autouse=True)
def registered_backbone():
    BACKBONE_REGISTRY.register(VideoTestBackbone)
    yield
    BACKBONE_REGISTRY._obj_map.pop("VideoTestBackbone")


def video_cfg(pool="avg", chunk=0, num_classes=3):
    cfg = get_cfg()
    cfg.merge_from_list([
        "MODEL.DEVICE", "cpu", "MODEL.META_ARCHITECTURE", "VideoBaseline", "MODEL.BACKBONE.NAME",
        "VideoTestBackbone", "MODEL.BACKBONE.PRETRAIN", False, "MODEL.HEADS.NUM_CLASSES", num_classes,
        "MODEL.TEMPORAL_POOL", pool, "TEST.FRAME_CHUNK", chunk,
        "MODEL.LOSSES.NAME", ("CrossEntropyLoss", "TripletLoss"),
    ])
    return cfg


def randomise_attention(model_or_pool, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for p in model_or_pool.parameters():
        with torch.no_grad():
            p.copy_(torch.randn(p.shape, generator=gen))


def frames(b=2, s=5, seed=0):
    return torch.rand(b, s, 3, 16, 8, generator=torch.Generator().manual_seed(seed)) * 255


def test_avg_and_max_against_hand_computation():
    x = torch.randn(3, 4, 5, 2, 2)
    torch.testing.assert_close(TemporalAvgPool(5)(x), sum(x[:, t] for t in range(4)) / 4)
    hand_max = x[:, 0]
    for t in range(1, 4):
        hand_max = torch.where(x[:, t] > hand_max, x[:, t], hand_max)
    torch.testing.assert_close(TemporalMaxPool(5)(x), hand_max)


def test_attention_weights_sum_to_one_and_weight_the_frames():
    pool = TemporalAttentionPool(16)
    x = torch.randn(2, 6, 16, 3, 2)
    torch.testing.assert_close(pool(x), x.mean(1))  # untrained: the plain mean
    randomise_attention(pool)
    w = pool.weights(x)
    assert w.shape == (2, 6) and (w > 0).all()
    torch.testing.assert_close(w.sum(1), torch.ones(2))
    assert w.std() > 0.01
    hand = torch.stack([sum(w[b, t] * x[b, t] for t in range(6)) for b in range(2)])
    torch.testing.assert_close(pool(x), hand)


@pytest.mark.parametrize("name", ["avg", "max", "attention"])
def test_chunked_pooling_equals_one_pass(name):
    pool = build_temporal_pool(name, 8)
    randomise_attention(pool)
    x = torch.randn(2, 7, 8, 3, 2) * 10
    for size in (1, 2, 3, 7):
        chunked = pool.pool_chunks(x[:, t:t + size] for t in range(0, 7, size))
        torch.testing.assert_close(chunked, pool(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="no frames"):
        pool.pool_chunks([])


def test_registry_aliases_and_errors():
    assert type(build_temporal_pool("avg", 4)) is TemporalAvgPool
    assert type(build_temporal_pool("TemporalMaxPool", 4)) is TemporalMaxPool
    assert type(build_temporal_pool("attention", 4)) is TemporalAttentionPool
    assert {"avg", "max", "attention"} <= set(TEMPORAL_POOL_REGISTRY.names())
    with pytest.raises(KeyError, match="TEMPORAL_POOL"):
        build_temporal_pool("mean", 4)


def test_build_and_explicit_arguments():
    model = build_model(video_cfg("attention", chunk=6))
    assert isinstance(model, VideoBaseline) and isinstance(model.temporal_pool, TemporalAttentionPool)
    assert model.frame_chunk == 6 and model.temporal_pool.channels == 8
    explicit = VideoBaseline(backbone=model.backbone, heads=model.heads, losses=list(model.losses),
                             pixel_mean=[0.0] * 3, pixel_std=[1.0] * 3, temporal_pool=TemporalMaxPool(8))
    assert explicit.frame_chunk == 0 and isinstance(explicit.temporal_pool, TemporalPool)
    with pytest.raises(ValueError, match="FRAME_CHUNK"):
        VideoBaseline(backbone=model.backbone, heads=model.heads, losses=[], pixel_mean=[0.0] * 3,
                      pixel_std=[1.0] * 3, temporal_pool=TemporalMaxPool(8), frame_chunk=-1)


def test_avg_video_features_are_the_mean_of_image_features():
    """With average pooling (and the head's average pooling and BN neck) a tracklet's feature is the mean of
    its frames' image features, as torchreid's pooling_method="avg" computes it."""
    video = build_model(video_cfg("avg")).eval()
    image_cfg = video_cfg("avg")
    image_cfg.MODEL.META_ARCHITECTURE = "Baseline"
    image = build_model(image_cfg).eval()
    video.load_state_dict(image.state_dict())  # a Baseline checkpoint loads as it is
    x = frames(b=2, s=5)
    with torch.no_grad():
        per_frame = image(x.flatten(0, 1)).view(2, 5, -1)
        torch.testing.assert_close(video(x), per_frame.mean(1), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(video(x[:, 0]), per_frame[:, 0], rtol=1e-4, atol=1e-4)  # B x 3 x H x W: S = 1
        torch.testing.assert_close(video({"images": x}), video(x))


def test_max_video_features_pool_the_backbone_maps():
    model = build_model(video_cfg("max")).eval()
    x = frames(b=3, s=4)
    with torch.no_grad():
        maps = model.backbone(((x.flatten(0, 1) - model.pixel_mean) / model.pixel_std)).view(3, 4, 8, 8, 4)
        torch.testing.assert_close(model(x), model.heads(maps.amax(1)))


@pytest.mark.parametrize("name", ["avg", "max", "attention"])
def test_chunked_eval_gives_the_features_of_one_pass(name):
    model = build_model(video_cfg(name, chunk=0)).eval()
    if name == "attention":
        randomise_attention(model.temporal_pool)
    x = frames(b=3, s=7)
    with torch.no_grad():
        whole = model(x)
        for chunk in (1, 3, 7, 8, 15, 21):  # frames of one tracklet split, whole tracklets grouped, all at once
            model.frame_chunk = chunk
            torch.testing.assert_close(model(x), whole, rtol=1e-5, atol=1e-5)


def test_chunks_bound_the_frames_per_backbone_pass():
    model = build_model(video_cfg("avg", chunk=3)).eval()
    seen = []
    model.backbone.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0].shape[0]))
    with torch.no_grad():
        model(frames(b=1, s=8))
    assert seen == [3, 3, 2]


@pytest.mark.parametrize("name", ["avg", "max", "attention"])
def test_training_returns_tracklet_losses_and_gradients(name):
    model = build_model(video_cfg(name)).train()
    batch = {"images": frames(b=4, s=3), "targets": torch.tensor([0, 0, 2, 2])}
    with EventStorage() as storage:
        losses = model(batch)
        assert "cls_accuracy" in storage.latest()
    assert set(losses) == {"loss_cls", "loss_triplet"} and all(v.dim() == 0 for v in losses.values())
    sum(losses.values()).backward()
    assert model.backbone[0].weight.grad.abs().sum() > 0
    if name == "attention":
        assert model.temporal_pool.score[2].weight.grad.abs().sum() > 0


def test_bad_input_names_the_expected_shape():
    model = build_model(video_cfg()).eval()
    with pytest.raises(ValueError, match="B x S x 3 x H x W"):
        model(torch.zeros(3, 16, 8))
    image_cfg = video_cfg()
    image_cfg.MODEL.META_ARCHITECTURE = "Baseline"
    image_model = build_model(image_cfg).eval()
    assert isinstance(model, Baseline) and not isinstance(image_model, VideoBaseline)
    with pytest.raises(ValueError, match="MODEL.META_ARCHITECTURE VideoBaseline"):
        image_model(frames())
