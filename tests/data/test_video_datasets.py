"""The four video re-id sets on fixture trees in their published layouts (tiny 8x4 frames, fake .mat / .json)."""
import json
import os

import numpy as np
import pytest
from scipy.io import savemat

from fastreid.config import get_cfg
from fastreid.data.datasets import (DATASET_REGISTRY, MARS, PRID2011, DatasetNotFoundError, DukeMTMCVidReID,
                                    VideoDataset, build_dataset, iLIDSVID)

from .conftest import write_images


def _counts(records):
    """(#tracklets, #ids, #cameras)."""
    return len(records), len({r[1] for r in records}), len({r[2] for r in records})


def _cfg(tmp_path, **keys):
    cfg = get_cfg()
    cfg.merge_from_list(["DATASETS.ROOT", str(tmp_path)] + [x for k, v in keys.items() for x in (k, v)])
    return cfg


def test_registered_names():
    for name in ("MARS", "Mars", "iLIDSVID", "PRID2011", "DukeMTMCVidReID", "SyntheticTracklets"):
        assert issubclass(DATASET_REGISTRY.get(name), VideoDataset)


# ----------------------------------------------------------------------------------------------------- MARS
# (subset, pid, camera, frames) of each tracklet; pid -1 = junk, 0 = distractor
MARS_TRAIN = [("train", 1, 1, 3), ("train", 1, 2, 2), ("train", 3, 6, 4), ("train", 3, 1, 1)]
MARS_TEST = [("test", 2, 1, 3), ("test", 2, 3, 2), ("test", 2, 1, 2), ("test", -1, 2, 2), ("test", 0, 4, 3),
             ("test", 5, 2, 2), ("test", 5, 5, 3)]
MARS_QUERY_ROWS = [1, 6]  # 1-based rows of the test tracks


def _mars_name(pid, cam, tracklet, frame):
    return f"{pid:04d}C{cam}T{tracklet:04d}F{frame:03d}.jpg" if pid >= 0 else f"00-1C{cam}T{tracklet:04d}F{frame:03d}.jpg"


def write_mars(root, drop_folder=None):
    info = os.path.join(root, "mars", "info")
    os.makedirs(info)
    for subset, tracks, key in (("train", MARS_TRAIN, "track_train_info"), ("test", MARS_TEST, "track_test_info")):
        names, rows = [], []
        for t, (_, pid, cam, n) in enumerate(tracks, 1):
            rows.append([len(names) + 1, len(names) + n, pid, cam])
            names += [_mars_name(pid, cam, t, f) for f in range(1, n + 1)]
        folder = os.path.join(root, "mars", f"bbox_{subset}")
        write_images(folder, [os.path.join(n[:4], n) for n in names if n[:4] != drop_folder], size=(8, 4))
        with open(os.path.join(info, f"{subset}_name.txt"), "w") as f:
            f.write("\n".join(names) + "\n")
        savemat(os.path.join(info, f"tracks_{subset}_info.mat"), {key: np.array(rows, dtype=np.float64)})
    savemat(os.path.join(info, "query_IDX.mat"), {"query_IDX": np.array([MARS_QUERY_ROWS], dtype=np.float64)})


def test_mars_counts_junk_and_gallery_rule(tmp_path):
    write_mars(str(tmp_path))
    ds = MARS(str(tmp_path), verbose=False)
    query = [t for i, t in enumerate(MARS_TEST, 1) if i in MARS_QUERY_ROWS and t[1] != -1]
    gallery = [t for i, t in enumerate(MARS_TEST, 1) if i not in MARS_QUERY_ROWS and t[1] != -1]
    for records, spec in ((ds.train, MARS_TRAIN), (ds.query, query), (ds.gallery, gallery)):
        assert _counts(records) == (len(spec), len({t[1] for t in spec}), len({t[2] for t in spec}))
        assert [len(r[0]) for r in records] == [t[3] for t in spec]
    assert [(r[1], r[2]) for r in ds.gallery] == [(t[1], t[2] - 1) for t in gallery]  # 0 = distractor kept
    frames = ds.query[0][0]
    assert frames == tuple(str(tmp_path / "mars" / "bbox_test" / "0002" / _mars_name(2, 1, 1, f)) for f in (1, 2, 3))
    assert all(os.path.isfile(p) for r in ds.train + ds.query + ds.gallery for p in r[0])
    assert {r[1] for r in ds.train} == {"MARS_1", "MARS_3"}
    assert len(MARS(str(tmp_path), min_seq_len=3, verbose=False).train) == 2


def test_mars_missing_and_partial(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="mars"):
        MARS(str(tmp_path))
    write_mars(str(tmp_path / "a"), drop_folder="0005")
    with pytest.raises(DatasetNotFoundError, match="0005"):
        MARS(str(tmp_path / "a"), verbose=False)
    os.remove(tmp_path / "a" / "mars" / "info" / "query_IDX.mat")
    with pytest.raises(DatasetNotFoundError, match="query_IDX.mat"):
        MARS(str(tmp_path / "a"))


# ------------------------------------------------------------------------------------------------ iLIDS-VID
def write_ilidsvid(root, num_persons=6, num_splits=10):
    base = os.path.join(root, "ilids-vid")
    frames = {}
    for p in range(1, num_persons + 1):
        for cam in (1, 2):
            n = 2 + (p + cam) % 3
            names = [f"cam{cam}_person{p:03d}_{100 + 7 * f:05d}.png" for f in reversed(range(n))]
            write_images(os.path.join(base, "i-LIDS-VID", "sequences", f"cam{cam}", f"person{p:03d}"), names, size=(8, 4))
            frames[(p, cam)] = n
    rng = np.random.default_rng(0)
    ls_set = np.stack([rng.permutation(num_persons) + 1 for _ in range(num_splits)]).astype(np.float64)
    os.makedirs(os.path.join(base, "train-test people splits"))
    savemat(os.path.join(base, "train-test people splits", "train_test_splits_ilidsvid.mat"), {"ls_set": ls_set})
    return ls_set.astype(int), frames


@pytest.mark.parametrize("split_id", [0, 9])
def test_ilidsvid_official_splits(tmp_path, split_id):
    ls_set, frames = write_ilidsvid(str(tmp_path))
    ds = build_dataset("iLIDSVID", _cfg(tmp_path, **{"DATASETS.SPLIT_ID": split_id}), verbose=False)
    test_ids, train_ids = set(ls_set[split_id, :3].tolist()), set(ls_set[split_id, 3:].tolist())
    assert _counts(ds.train) == (2 * len(train_ids), len(train_ids), 2)
    assert {int(r[1].split("_")[1]) for r in ds.train} == train_ids
    assert _counts(ds.query) == (3, 3, 1) and {r[1] for r in ds.query} == test_ids and {r[2] for r in ds.query} == {0}
    assert _counts(ds.gallery) == (3, 3, 1) and {r[1] for r in ds.gallery} == test_ids
    assert {r[2] for r in ds.gallery} == {1}
    for r in ds.query:
        assert len(r[0]) == frames[(r[1], 1)] and list(r[0]) == sorted(r[0])  # temporal (name) order


def test_ilidsvid_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="ilids-vid"):
        iLIDSVID(str(tmp_path))
    write_ilidsvid(str(tmp_path))
    with pytest.raises(ValueError, match="split_id 10"):
        iLIDSVID(str(tmp_path), split_id=10)
    os.remove(tmp_path / "ilids-vid" / "train-test people splits" / "train_test_splits_ilidsvid.mat")
    with pytest.raises(DatasetNotFoundError, match="train_test_splits_ilidsvid.mat"):
        iLIDSVID(str(tmp_path))


# ------------------------------------------------------------------------------------------------- PRID2011
def write_prid2011(root, splits):
    base = os.path.join(root, "prid2011")
    for cam, count in (("cam_a", 8), ("cam_b", 10)):
        for p in range(1, count + 1):
            write_images(os.path.join(base, "prid_2011", "multi_shot", cam, f"person_{p:04d}"),
                         [f"{f:04d}.png" for f in range(1, 2 + p % 3)], size=(8, 4))
    if splits is not None:
        with open(os.path.join(base, "splits_prid2011.json"), "w") as f:
            json.dump(splits, f)


def test_prid2011_split_json(tmp_path):
    rng = np.random.default_rng(1)
    splits = []
    for _ in range(10):
        order = [f"person_{p:04d}" for p in rng.permutation(np.arange(1, 7))]
        splits.append({"train": order[:3], "test": order[3:]})
    write_prid2011(str(tmp_path), splits)
    for split_id in (0, 4):
        ds = PRID2011(str(tmp_path), split_id=split_id, verbose=False)
        train_ids = {int(n[-4:]) for n in splits[split_id]["train"]}
        test_ids = {int(n[-4:]) for n in splits[split_id]["test"]}
        assert _counts(ds.train) == (6, 3, 2) and {int(r[1].split("_")[1]) for r in ds.train} == train_ids
        assert _counts(ds.query) == (3, 3, 1) and {r[1] for r in ds.query} == test_ids
        assert _counts(ds.gallery) == (3, 3, 1) and {r[2] for r in ds.gallery} == {1}
        assert all(len(r[0]) == 1 + r[1] % 3 for r in ds.query + ds.gallery)
    # PRID's cam_b-only persons (9, 10) are in no split
    assert not {9, 10} & {r[1] for r in ds.gallery}


def test_prid2011_errors(tmp_path):
    write_prid2011(str(tmp_path), None)
    with pytest.raises(DatasetNotFoundError, match="splits_prid2011.json"):
        PRID2011(str(tmp_path))
    write_prid2011(str(tmp_path / "b"), [{"train": ["person_0001"], "test": ["person_0042"]}])
    with pytest.raises(DatasetNotFoundError, match="person_0042"):
        PRID2011(str(tmp_path / "b"))


# -------------------------------------------------------------------------------------- DukeMTMC-VideoReID
# subset -> {pid: [(camera, first frame, frames), ...]}
DUKE = {
    "train": {1: [(1, 1, 3), (2, 2, 5)], 7: [(3, 1, 1)]},
    "query": {2: [(4, 1, 2)], 5: [(8, 3, 4)]},
    "gallery": {2: [(1, 1, 3), (6, 1, 6)], 5: [(2, 1, 2)], 9: [(7, 1, 3)]},
}


def write_duke_video(root, old_names=False):
    base = os.path.join(root, "DukeMTMC-VideoReID")
    for subset, pids in DUKE.items():
        for pid, tracklets in pids.items():
            for t, (cam, first, n) in enumerate(tracklets, 1):
                fmt = "{:04d}C{}F{:04d}X{:05d}.jpg" if old_names else "{:04d}_C{}_F{:04d}_X{:05d}.jpg"
                names = [fmt.format(pid, cam, first + f, 30000 - f) for f in range(n)]
                write_images(os.path.join(base, subset, f"{pid:04d}", f"{t:04d}"), names, size=(8, 4))


@pytest.mark.parametrize("old_names", [False, True])
def test_duke_video_counts_cameras_and_order(tmp_path, old_names):
    write_duke_video(str(tmp_path), old_names)
    ds = DukeMTMCVidReID(str(tmp_path), verbose=False)
    for subset, pids in DUKE.items():
        specs = [(pid, cam) for pid, ts in pids.items() for cam, _, _ in ts]
        records = getattr(ds, subset)
        assert _counts(records) == (len(specs), len(pids), len({c for _, c in specs}))
        assert sorted(len(r[0]) for r in records) == sorted(n for ts in pids.values() for _, _, n in ts)
    assert sorted((r[1], r[2]) for r in ds.gallery) == sorted(
        (pid, cam - 1) for pid, ts in DUKE["gallery"].items() for cam, _, _ in ts)
    frames = [os.path.basename(p) for p in ds.train[1][0]]
    assert frames[0].replace("_", "").startswith("0001C2F0002") and len(frames) == 5
    assert frames == sorted(frames)  # frame-number order (the X field decreases)


def test_duke_video_min_seq_len_and_errors(tmp_path):
    write_duke_video(str(tmp_path))
    ds = build_dataset("DukeMTMCVidReID", _cfg(tmp_path, **{"DATASETS.MIN_SEQ_LEN": 3}), verbose=False)
    expected = {s: sum(n >= 3 for ts in pids.values() for _, _, n in ts) for s, pids in DUKE.items()}
    assert {s: len(getattr(ds, s)) for s in DUKE} == expected
    with pytest.raises(DatasetNotFoundError, match="DukeMTMC-VideoReID"):
        DukeMTMCVidReID(str(tmp_path / "none"))
    os.rename(tmp_path / "DukeMTMC-VideoReID" / "gallery", tmp_path / "gallery_moved")
    with pytest.raises(DatasetNotFoundError, match="gallery"):
        DukeMTMCVidReID(str(tmp_path))
