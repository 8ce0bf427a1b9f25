"""Tracklet features through the same ReidEvaluator: metrics against a brute-force reference, chunked "all"
sampling, flip test, tracklet rank lists and a tiny DefaultTrainer run on tracklet records."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from fastreid.config import get_cfg
from fastreid.data import TrackletDataset, build_reid_test_loader, sample_frame_indices
from fastreid.data.datasets import DATASET_REGISTRY, VideoDataset
from fastreid.data.transforms import build_transforms
from fastreid.engine import DefaultTrainer
from fastreid.evaluation import ReidEvaluator, forward_features, inference_on_dataset
from fastreid.evaluation.visualizer import shown_frames, visualize_ranked_results
from fastreid.modeling.heads import build_heads
from fastreid.modeling.meta_arch import VideoBaseline
from fastreid.modeling.temporal_pool import build_temporal_pool

from reference import brute_force_rank

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from trainer_utils import tiny_overrides  # noqa: E402

# (pid, camid, frames): queries first. Identity 3 has no gallery match from another camera (skipped query).
QUERY = [(1, 0, 5), (2, 1, 3), (3, 0, 4), (4, 2, 6)]
GALLERY = [(1, 1, 4), (1, 0, 2), (2, 0, 7), (2, 2, 3), (3, 0, 5), (4, 0, 4), (4, 1, 2), (5, 1, 6), (6, 2, 3)]


def write_records(root, layout, seed=0):
    """Tracklets of 32x16 frames, a random colour per tracklet plus noise per frame: ``(frame_paths, pid, camid)``
    per ``(pid, camid, frames)``."""
    rng = np.random.default_rng(seed)
    records = []
    for t, (pid, camid, n) in enumerate(layout):
        folder = os.path.join(root, f"{pid:04d}_c{camid}_t{t}")
        os.makedirs(folder, exist_ok=True)
        paths, colour = [], rng.integers(0, 200, 3)
        for k in range(n):
            paths.append(os.path.join(folder, f"{k:03d}.png"))
            pixels = colour + rng.integers(0, 56, (32, 16, 3))
            Image.fromarray(pixels.astype(np.uint8)).save(paths[-1])
        records.append((tuple(paths), pid, camid))
    return records


def video_model(pool="avg"):
    """An eval-mode VideoBaseline from explicit arguments: a one-conv backbone (6 channels) and the default head."""
    backbone = nn.Sequential(nn.Conv2d(3, 6, 3, 2, 1), nn.BatchNorm2d(6), nn.ReLU())
    return VideoBaseline(backbone=backbone, heads=build_heads(get_cfg(), 6), losses=[], pixel_mean=[120.0] * 3,
                         pixel_std=[60.0] * 3, temporal_pool=build_temporal_pool(pool, 6)).eval()


def tracklet_test_set(tmp_path, method, seq_len=4):
    records = write_records(str(tmp_path / "tracklets"), QUERY + GALLERY)
    cfg = get_cfg()
    cfg.INPUT.SIZE_TEST = [32, 16]
    tf = build_transforms(cfg, is_train=False)
    return records, TrackletDataset(records, tf, relabel=False, seq_len=seq_len, sample_method=method)


def evaluate(model, dataset, batch_size, **evaluator_args):
    loader, num_query = build_reid_test_loader(test_set=dataset, num_query=len(QUERY), batch_size=batch_size)
    evaluator = ReidEvaluator(num_query, **evaluator_args)
    results = inference_on_dataset(model, loader, evaluator)
    return results, evaluator.collected()


def test_tracklet_metrics_equal_a_brute_force_reference(tmp_path):
    records, dataset = tracklet_test_set(tmp_path, "evenly")
    model = video_model("avg")
    results, data = evaluate(model, dataset, batch_size=3, ranks=(1, 2, 5))

    # By hand: each sampled frame alone through the model (an image batch), averaged per tracklet.
    tf = dataset.transform
    pooled = []
    with torch.no_grad():
        for paths, _, _ in records:
            chosen = sample_frame_indices(len(paths), 4, "evenly")
            frames = torch.stack([tf(Image.open(paths[i]).convert("RGB")) for i in chosen])
            pooled.append(model(frames).mean(0))
    feats = torch.stack(pooled).double()
    torch.testing.assert_close(data["feats"].double(), feats, rtol=1e-4, atol=1e-5)
    assert data["img_paths"] == [r[0] for r in records]

    unit = (feats / feats.norm(dim=1, keepdim=True)).numpy()
    nq = len(QUERY)
    dist = np.array([[1.0 - float(np.dot(unit[q], unit[nq + g])) for g in range(len(GALLERY))] for q in range(nq)])
    gaps = np.diff(np.sort(dist, axis=1), axis=1)
    assert gaps.min() > 1e-4  # no near-ties whose order float32 rounding could flip
    pids, cams = [r[1] for r in records], [r[2] for r in records]
    cmc, aps, inps = brute_force_rank(dist, pids[:nq], pids[nq:], cams[:nq], cams[nq:], max_rank=50)
    assert len(aps) == 3  # identity 3's query has no match from another camera
    assert results["Rank-1"] == pytest.approx(cmc[0] * 100, abs=1e-6)
    assert results["Rank-2"] == pytest.approx(cmc[1] * 100, abs=1e-6)
    assert results["Rank-5"] == pytest.approx(cmc[4] * 100, abs=1e-6)
    assert results["mAP"] == pytest.approx(aps.mean() * 100, abs=1e-6)
    assert results["mINP"] == pytest.approx(inps.mean() * 100, abs=1e-6)


@pytest.mark.parametrize("pool", ["avg", "attention"])
def test_all_sampling_gives_the_same_features_in_one_chunk_as_in_several(tmp_path, pool):
    _, dataset = tracklet_test_set(tmp_path, "all")
    model = video_model(pool)
    if pool == "attention":
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in model.temporal_pool.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))
    one_results, one = evaluate(model, dataset, batch_size=64)
    seen = []
    model.backbone.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0].shape[0]))
    for chunk in (1, 2, 3):
        model.frame_chunk = chunk
        seen.clear()
        results, data = evaluate(model, dataset, batch_size=64)
        assert max(seen) == chunk and sum(seen) == sum(n for _, _, n in QUERY + GALLERY)
        torch.testing.assert_close(data["feats"], one["feats"], rtol=1e-5, atol=1e-5)
        assert results == pytest.approx(one_results)


def test_flip_test_mirrors_every_frame(tmp_path):
    model = video_model("max")
    frames = torch.rand(2, 3, 3, 32, 16) * 255
    with torch.no_grad():
        flipped = forward_features(model, {"images": frames}, flip=True)
        by_hand = (model(frames) + model(torch.stack([f.flip(-1) for f in frames.flatten(0, 1)]).view_as(frames))) / 2
    torch.testing.assert_close(flipped, by_hand)


def test_rank_lists_show_first_middle_and_last_frames(tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    paths = []
    for k, colour in enumerate(colours):
        paths.append(str(tmp_path / f"f{k}.png"))
        Image.new("RGB", (16, 32), colour).save(paths[-1])
    assert shown_frames(paths) == (paths[0], paths[2], paths[4])
    assert shown_frames(paths[:2]) == (paths[0], paths[1]) and shown_frames(paths[:1]) == (paths[0],)
    assert shown_frames(paths[3]) == (paths[3],)
    q_paths, g_paths = [tuple(paths)], [tuple(paths[:2]), paths[1]]
    written = visualize_ranked_results(np.array([[0.1, 0.2]]), [1], [1, 2], [0], [1, 1], q_paths, g_paths,
                                       str(tmp_path / "out"), topk=2, queries=[0], image_size=(8, 16), border=2)
    img = np.asarray(Image.open(written[0]).convert("RGB"))
    assert os.path.basename(written[0]) == "000_q0_f0.png"
    row = img[-10]  # a row through the frames, below the title
    query = [tuple(row[2 + 8 * i + 4]) for i in range(3)]  # the middle of each frame inside the border
    assert query == [colours[0], colours[2], colours[4]]
    assert img.shape[1] == (3 * 8 + 4 + 2) + (2 * 8 + 4 + 2) + (8 + 4 + 2)


@DATASET_REGISTRY.register()
class EvalTracklets(VideoDataset):
    """Test-only tracklet set: train ids 1-6 on 2 cameras x 2 tracklets, test layout of QUERY / GALLERY."""

    def __init__(self, root="datasets", **kwargs):
        folder = os.path.join(root, "eval_tracklets")
        layout = [(pid, cam, 3 + (pid + cam + t) % 4) for pid in range(1, 7) for cam in range(2) for t in range(2)]
        train = write_records(os.path.join(folder, "train"), layout, seed=1)
        test = write_records(os.path.join(folder, "test"), QUERY + GALLERY, seed=2)
        super().__init__(train, test[:len(QUERY)], test[len(QUERY):], **kwargs)


def test_default_trainer_trains_and_evaluates_on_tracklets(tmp_path):
    cfg = get_cfg()
    cfg.merge_from_list(tiny_overrides(str(tmp_path / "data"), str(tmp_path / "out")) + [
        "MODEL.META_ARCHITECTURE", "VideoBaseline", "MODEL.TEMPORAL_POOL", "attention",
        "DATASETS.NAMES", ("EvalTracklets",), "DATASETS.TESTS", ("EvalTracklets",), "INPUT.SEQ_LEN", 3,
        "INPUT.SAMPLE_METHOD_TEST", "all", "TEST.FRAME_CHUNK", 4, "SOLVER.IMS_PER_BATCH", 4,
        "SOLVER.MAX_EPOCH", 1, "SOLVER.CHECKPOINT_PERIOD", 1, "TEST.EVAL_PERIOD", 1,
    ])
    trainer = DefaultTrainer(cfg)
    assert trainer.cfg.MODEL.HEADS.NUM_CLASSES == 6 and trainer.iters_per_epoch == 6
    batch = next(iter(trainer.data_loader))
    assert batch["images"].shape == (4, 3, 3, 32, 16)
    results = trainer.train()["EvalTracklets"]
    assert set(results) >= {"Rank-1", "mAP", "mINP"} and 0 <= results["mAP"] <= 100
    assert trainer.storage.history("total_loss").latest() > 0
