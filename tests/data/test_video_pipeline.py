"""Tracklet sampling (evenly / random / all), one augmentation per tracklet, and the video train / test loaders."""
import os
import random
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from fastreid.config import get_cfg
from fastreid.data import (TrackletDataset, build_reid_test_loader, build_reid_train_loader, build_test_set,
                           build_train_set, collate_tracklets, sample_frame_indices)
from fastreid.data.datasets import DATASET_REGISTRY, VideoDataset
from fastreid.data.transforms import build_transforms


def write_tracklet(folder, colors, size=(32, 16)):
    """Frames of one tracklet, frame k filled with ``colors[k]`` (an int gray level or an RGB triple)."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for k, color in enumerate(colors):
        rgb = (color,) * 3 if isinstance(color, int) else tuple(color)
        path = os.path.join(folder, f"f{k:03d}.png")
        Image.new("RGB", (size[1], size[0]), rgb).save(path)
        paths.append(path)
    return tuple(paths)


def write_textured_tracklet(folder, num_frames, seed):
    """Frames sharing one random texture (so every frame is the same image), for augmentation checks."""
    os.makedirs(folder, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (32, 16, 3), dtype=np.uint8)
    paths = []
    for k in range(num_frames):
        path = os.path.join(folder, f"f{k:03d}.png")
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return tuple(paths)


def tracklet_records(root, lengths=(6, 3, 5, 8, 2, 7, 4, 6), num_ids=4):
    """``(frames, pid, camid)`` records: tracklet t of identity t % num_ids, camera t // num_ids; frame k of
    tracklet t has gray level 10 * t + k, so a frame is recognised by its value."""
    return [(write_tracklet(os.path.join(root, f"t{t}"), [10 * t + k for k in range(n)]), t % num_ids, t // num_ids)
            for t, n in enumerate(lengths)]


def frame_levels(images):
    """The gray level of each frame of an S x 3 x H x W tensor (0-255 scale)."""
    return [int(round(float(f.mean()))) for f in images]


@DATASET_REGISTRY.register()
class PipelineTracklets(VideoDataset):
    """Test-only tracklet set: 4 identities x 2 cameras in train, the same layout again for query / gallery."""

    def __init__(self, root="datasets", **kwargs):
        folder = os.path.join(root, "pipeline_tracklets")
        train = tracklet_records(os.path.join(folder, "train"))
        test = [(f, pid + 100, cam) for f, pid, cam in tracklet_records(os.path.join(folder, "test"))]
        super().__init__(train, test[:4], test[4:], **kwargs)


def video_cfg(root, *extra):
    cfg = get_cfg()
    cfg.merge_from_list([
        "DATASETS.ROOT", str(root), "DATASETS.NAMES", ("PipelineTracklets",), "DATASETS.TESTS", ("PipelineTracklets",),
        "INPUT.SIZE_TRAIN", [32, 16], "INPUT.SIZE_TEST", [32, 16], "INPUT.SEQ_LEN", 4, "SOLVER.IMS_PER_BATCH", 4,
        "DATALOADER.NUM_INSTANCE", 2, "DATALOADER.NUM_WORKERS", 0, "TEST.IMS_PER_BATCH", 3, "MODEL.DEVICE", "cpu",
        *extra,
    ])
    return cfg


def reference_evenly(n, seq_len):
    """torchreid's evenly rule written out: cut to a multiple of seq_len and step, else pad with the last frame."""
    if n < seq_len:
        return list(range(n)) + [n - 1] * (seq_len - n)
    usable = n - n % seq_len
    return [int(i) for i in np.arange(0, usable, usable / seq_len)]


def test_evenly_matches_torchreid_rule():
    for seq_len in (1, 4, 15):
        for n in range(1, 40):
            assert sample_frame_indices(n, seq_len, "evenly") == reference_evenly(n, seq_len), (n, seq_len)


def test_evenly_examples():
    assert sample_frame_indices(10, 4, "evenly") == [0, 2, 4, 6]
    assert sample_frame_indices(4, 4, "evenly") == [0, 1, 2, 3]
    assert sample_frame_indices(2, 4, "evenly") == [0, 1, 1, 1]


def test_random_is_sorted_distinct_when_long_and_repeats_when_short():
    rng = np.random.default_rng(0)
    for _ in range(50):
        idx = sample_frame_indices(10, 4, "random", rng)
        assert idx == sorted(idx) and len(set(idx)) == 4 and all(0 <= i < 10 for i in idx)
    draws = [tuple(sample_frame_indices(3, 5, "random", rng)) for _ in range(50)]
    assert all(len(d) == 5 and list(d) == sorted(d) and set(d) <= {0, 1, 2} for d in draws)
    assert len(set(draws)) > 1


def test_all_and_errors():
    assert sample_frame_indices(7, 3, "all") == list(range(7))
    with pytest.raises(ValueError, match="evenly, random, all"):
        sample_frame_indices(5, 3, "uniform")
    with pytest.raises(ValueError, match="empty"):
        sample_frame_indices(0, 3, "evenly")
    with pytest.raises(ValueError, match="INPUT.SAMPLE_METHOD"):
        TrackletDataset([], None, sample_method="uniform")
    with pytest.raises(ValueError, match="tuple of frame paths"):
        TrackletDataset([("a.jpg", 1, 0)], None)


def test_samples_take_the_rule_s_frames(tmp_path):
    records = tracklet_records(tmp_path, lengths=(10, 2))
    to_tensor = build_transforms(video_cfg(tmp_path), is_train=False)
    evenly = TrackletDataset(records, to_tensor, relabel=False, seq_len=4, sample_method="evenly")
    assert frame_levels(evenly[0]["images"]) == [0, 2, 4, 6]
    assert frame_levels(evenly[1]["images"]) == [10, 11, 11, 11]  # short tracklet: last frame repeated
    sample = evenly[1]
    assert sample["images"].shape == (4, 3, 32, 16) and sample["images"].dtype == torch.float32
    assert sample["img_paths"] == records[1][0] and sample["indices"] == 1
    every = TrackletDataset(records, to_tensor, relabel=False, seq_len=4, sample_method="all")
    assert frame_levels(every[0]["images"]) == list(range(10))
    rand = TrackletDataset(records, to_tensor, relabel=False, seq_len=4, sample_method="random")
    levels = frame_levels(rand[(0, 123)]["images"])
    assert levels == sorted(levels) and len(set(levels)) == 4
    assert frame_levels(rand[(0, 123)]["images"]) == levels  # seeded: the same frames again


def test_one_augmentation_per_tracklet(tmp_path):
    cfg = video_cfg(tmp_path, "INPUT.PADDING", 4, "INPUT.REA.ENABLED", True, "INPUT.CJ.ENABLED", True)
    records = [(write_textured_tracklet(tmp_path / f"t{t}", 5, seed=t), t, 0) for t in range(2)]
    ds = TrackletDataset(records, build_transforms(cfg, is_train=True), seq_len=5, sample_method="evenly")
    for index in [0, 1, (0, 7), (1, 99)]:
        frames = ds[index]["images"]
        assert all(torch.equal(frames[0], f) for f in frames[1:]), index
    # The transform is random: other seeds give another augmentation of the same tracklet.
    variants = {ds[(0, seed)]["images"][0].sum().item() for seed in range(8)}
    assert len(variants) > 1


def test_seeded_samples_leave_global_rng_alone_and_plain_ones_advance_it_once(tmp_path):
    cfg = video_cfg(tmp_path, "INPUT.PADDING", 4)
    records = [(write_textured_tracklet(tmp_path / "t", 6, seed=0), 0, 0)]
    image_tf = build_transforms(cfg, is_train=True)
    ds = TrackletDataset(records, image_tf, seq_len=6, sample_method="evenly")
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)
    before = torch.get_rng_state()
    ds.__getitems__([(0, 11)])
    assert torch.equal(torch.get_rng_state(), before)
    ds.__getitems__([0])  # one tracklet advances the generators as one image transform does
    after_tracklet = torch.get_rng_state()
    torch.set_rng_state(before)
    image_tf(Image.open(records[0][0][0]).convert("RGB"))
    assert torch.equal(torch.get_rng_state(), after_tracklet)


def test_train_loader_batches_tracklets_by_identity(tmp_path):
    cfg = video_cfg(tmp_path, "DATALOADER.SAMPLER_TRAIN", "NaiveIdentitySampler")
    loader = build_reid_train_loader(cfg, seed=3)
    assert isinstance(loader.dataset, TrackletDataset) and loader.dataset.num_classes == 4
    assert loader.dataset.sample_method == "random"
    it = iter(loader)
    for _ in range(3):
        batch = next(it)
        assert batch["images"].shape == (4, 4, 3, 32, 16)
        assert sorted(Counter(batch["targets"].tolist()).values()) == [2, 2]  # P = 2 ids x K = 2 tracklets
        assert len(batch["img_paths"]) == 4 and all(isinstance(p, tuple) for p in batch["img_paths"])
        assert batch["indices"].shape == (4,)


def test_train_batches_do_not_depend_on_the_number_of_workers(tmp_path):
    cfg = video_cfg(tmp_path, "INPUT.PADDING", 4, "INPUT.REA.ENABLED", True)
    batches = {}
    for workers in (0, 2):
        it = iter(build_reid_train_loader(cfg, seed=3, num_workers=workers))
        batches[workers] = [next(it) for _ in range(2)]
    for a, b in zip(batches[0], batches[2]):
        assert torch.equal(a["images"], b["images"]) and torch.equal(a["targets"], b["targets"])


def test_test_loaders_evenly_and_all(tmp_path):
    cfg = video_cfg(tmp_path)
    test_set, num_query = build_test_set(cfg, "PipelineTracklets", build_transforms(cfg, is_train=False))
    assert isinstance(test_set, TrackletDataset) and num_query == 4 and test_set.pids[0] == 100
    loader, _ = build_reid_test_loader(cfg, dataset_name="PipelineTracklets")
    shapes = [tuple(b["images"].shape) for b in loader]
    assert shapes == [(3, 4, 3, 32, 16)] * 2 + [(2, 4, 3, 32, 16)]
    cfg = video_cfg(tmp_path, "INPUT.SAMPLE_METHOD_TEST", "all")
    loader, _ = build_reid_test_loader(cfg, dataset_name="PipelineTracklets")
    lengths = [b["images"].shape[1] for b in loader]
    assert lengths == [6, 3, 5, 8, 2, 7, 4, 6] and loader.batch_size is None
    assert all(len(b["images"]) == 1 for b in loader)


def test_train_set_refuses_all_and_mixed_datasets(tmp_path):
    with pytest.raises(ValueError, match="SAMPLE_METHOD_TRAIN"):
        build_train_set(video_cfg(tmp_path, "INPUT.SAMPLE_METHOD_TRAIN", "all"))
    cfg = video_cfg(tmp_path, "DATASETS.NAMES", ("PipelineTracklets", "SyntheticPerson"),
                    "DATASETS.SYNTHETIC.NUM_IDS", 8, "DATASETS.SYNTHETIC.NUM_CAMERAS", 2,
                    "DATASETS.SYNTHETIC.IMAGES_PER_ID", 3, "DATASETS.SYNTHETIC.HEIGHT", 32,
                    "DATASETS.SYNTHETIC.WIDTH", 16)
    with pytest.raises(ValueError, match="mixes tracklet"):
        build_train_set(cfg)


def test_collate_refuses_tracklets_of_different_lengths():
    a = {"images": torch.zeros(3, 3, 4, 2), "targets": 0, "camids": 0, "img_paths": ("a",), "indices": 0}
    b = dict(a, images=torch.zeros(2, 3, 4, 2))
    with pytest.raises(ValueError, match="batch size 1"):
        collate_tracklets([a, b])


def test_bad_frames_skip_the_tracklet_when_asked(tmp_path):
    records = tracklet_records(tmp_path, lengths=(3, 3))
    with open(records[0][0][1], "wb") as f:
        f.write(b"not an image")
    tf = build_transforms(video_cfg(tmp_path), is_train=False)
    strict = TrackletDataset(records, tf, relabel=False, seq_len=3, sample_method="evenly")
    with pytest.raises(OSError, match="f001"):
        strict[0]
    lenient = TrackletDataset(records, tf, relabel=False, seq_len=3, sample_method="evenly", skip_bad_images=True)
    assert lenient[0]["targets"] == 1 and lenient.num_skipped == 1
