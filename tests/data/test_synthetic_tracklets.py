import json
import os
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image

from fastreid.config import get_cfg
from fastreid.data.datasets import SyntheticTracklets, VideoDataset, build_dataset
from fastreid.data.datasets.synthetic import num_train_ids


def _kw(**over):
    kw = dict(num_ids=8, num_cameras=3, tracklets_per_camera=2, frames=4, height=32, width=16, seed=0, verbose=False)
    kw.update(over)
    return kw


def _pixels(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


def _raw_pid(record):
    pid = record[1]
    return int(pid.rsplit("_", 1)[1]) if isinstance(pid, str) else pid


def test_deterministic_generation_and_layout(tmp_path):
    a = SyntheticTracklets(str(tmp_path / "a"), **_kw())
    b = SyntheticTracklets(str(tmp_path / "b"), **_kw())
    assert isinstance(a, VideoDataset)
    for subset in ("train", "query", "gallery"):
        names_a = [[os.path.relpath(p, str(tmp_path / "a")) for p in r[0]] for r in getattr(a, subset)]
        names_b = [[os.path.relpath(p, str(tmp_path / "b")) for p in r[0]] for r in getattr(b, subset)]
        assert names_a == names_b
    frames_a, frames_b = a.query[0][0], b.query[0][0]
    assert len(frames_a) == 4 and _pixels(frames_a[0]).shape == (32, 16, 3)
    assert all(np.array_equal(_pixels(x), _pixels(y)) for x, y in zip(frames_a, frames_b))
    # Duke-VideoReID names: <pid>_C<cam>_F<frame>, frames in temporal order
    first = os.path.basename(frames_a[0])
    assert first[:4] == f"{a.query[0][1]:04d}" and first[4:7] == f"_C{a.query[0][2] + 1}"


@pytest.mark.parametrize("per_cam", [1, 2])
def test_counts_and_query_protocol(tmp_path, per_cam):
    ds = SyntheticTracklets(str(tmp_path), **_kw(num_ids=12, num_cameras=4, tracklets_per_camera=per_cam))
    num_train = num_train_ids(12)
    cams_of = defaultdict(set)
    for r in ds.train:
        cams_of[_raw_pid(r)].add(r[2])
    for r in ds.query + ds.gallery:
        cams_of[r[1]].add(r[2])
    assert sorted(cams_of) == list(range(1, 13)) and all(len(c) >= 2 for c in cams_of.values())
    assert {_raw_pid(r) for r in ds.train} == set(range(1, num_train + 1))
    assert len(ds.train) == per_cam * sum(len(cams_of[p]) for p in range(1, num_train + 1))
    test_ids = range(num_train + 1, 13)
    # one query per (test id, camera), except the last camera when there is one tracklet per camera
    expected_queries = sum(len(cams_of[p]) - (per_cam == 1) for p in test_ids)
    assert len(ds.query) == expected_queries
    assert len(ds.query) + len(ds.gallery) == per_cam * sum(len(cams_of[p]) for p in test_ids)
    assert len({(r[1], r[2]) for r in ds.query}) == len(ds.query)
    for q in ds.query:
        assert any(g[1] == q[1] and g[2] != q[2] for g in ds.gallery)
    assert all(len(r[0]) == 4 for r in ds.train + ds.query + ds.gallery)


def test_frames_change_slightly_and_consecutive_frames_are_closest(tmp_path):
    ds = SyntheticTracklets(str(tmp_path), **_kw(frames=6, height=64, width=32))
    tracklets = [(r[0], _raw_pid(r)) for r in ds.train] + [(r[0], r[1]) for r in ds.query + ds.gallery]
    consecutive, other_id = [], []
    for frames, pid in tracklets:
        images = [_pixels(p) for p in frames]
        steps = [np.abs(x - y).mean() for x, y in zip(images, images[1:])]
        assert min(steps) > 0.5  # frames are not copies
        consecutive += steps
        others = [f for f, p in tracklets if p != pid]
        other_id += [np.abs(images[0] - _pixels(f[0])).mean() for f in others[:5]]
    assert max(consecutive) < min(other_id)
    assert np.mean(consecutive) * 3 < np.mean(other_id)


def test_regenerated_only_when_parameters_change(tmp_path):
    SyntheticTracklets(str(tmp_path), **_kw())
    meta = tmp_path / "SyntheticTracklets" / "meta.json"
    stamp = os.path.getmtime(meta)
    SyntheticTracklets(str(tmp_path), **_kw())
    assert os.path.getmtime(meta) == stamp
    ds = SyntheticTracklets(str(tmp_path), **_kw(frames=3))
    assert json.loads(meta.read_text())["frames"] == 3 and all(len(r[0]) == 3 for r in ds.train)
    assert os.listdir(tmp_path) == ["SyntheticTracklets"]  # no temporary folders left


def test_from_config_and_bad_parameters(tmp_path):
    cfg = get_cfg()
    cfg.merge_from_list([
        "DATASETS.ROOT", str(tmp_path), "DATASETS.SYNTHETIC_TRACKLETS.NUM_IDS", 8,
        "DATASETS.SYNTHETIC_TRACKLETS.NUM_CAMERAS", 2, "DATASETS.SYNTHETIC_TRACKLETS.TRACKLETS_PER_CAMERA", 1,
        "DATASETS.SYNTHETIC_TRACKLETS.FRAMES", 3, "DATASETS.SYNTHETIC_TRACKLETS.HEIGHT", 16,
        "DATASETS.SYNTHETIC_TRACKLETS.WIDTH", 8,
    ])
    ds = build_dataset("SyntheticTracklets", cfg, verbose=False)
    assert len(ds.train) == 4 * 2 and len(ds.query) == 4 and len(ds.gallery) == 4
    assert Image.open(ds.train[0][0][0]).size == (8, 16)
    cfg.merge_from_list(["DATASETS.MIN_SEQ_LEN", 4])
    assert build_dataset("SyntheticTracklets", cfg, verbose=False).train == []
    with pytest.raises(ValueError, match="NUM_CAMERAS"):
        SyntheticTracklets(str(tmp_path), **_kw(num_cameras=1))


def test_tracker_failures_replace_a_fraction_of_the_frames(tmp_path):
    clean = SyntheticTracklets(str(tmp_path / "clean"), **_kw(frames=8))
    noisy = SyntheticTracklets(str(tmp_path / "noisy"), **_kw(frames=8, failure_rate=0.3))
    assert [len(r[0]) for r in noisy.train] == [len(r[0]) for r in clean.train]
    changed = [not np.array_equal(_pixels(a), _pixels(b))
               for c, n in zip(clean.train, noisy.train) for a, b in zip(c[0], n[0])]
    assert 0.15 < np.mean(changed) < 0.45  # 30 % of the frames on average
    always = SyntheticTracklets(str(tmp_path / "always"), **_kw(frames=2, failure_rate=1.0))
    first_clean = SyntheticTracklets(str(tmp_path / "clean2"), **_kw(frames=2))
    assert all(not np.array_equal(_pixels(a), _pixels(b))
               for c, n in zip(first_clean.train, always.train) for a, b in zip(c[0], n[0]))
    with pytest.raises(ValueError, match="FAILURE_RATE"):
        SyntheticTracklets(str(tmp_path / "bad"), **_kw(failure_rate=1.5))


def test_a_misplaced_box_shifts_the_person_and_repeats_the_edge():
    from fastreid.data.datasets.synthetic_tracklets import shifted
    img = Image.fromarray(np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3))
    out = np.asarray(shifted(img, 2, -1))
    a = np.asarray(img)
    assert out.shape == a.shape
    assert np.array_equal(out[:3, 2:], a[1:, :3])       # content moved right by 2 and up by 1
    assert np.array_equal(out[:3, 0], a[1:, 0]) and np.array_equal(out[3], out[2])  # edges repeated
