import json
import os
import sys

import numpy as np
import pytest
from PIL import Image

from fastreid.config import get_cfg
from fastreid.data.datasets import DatasetNotFoundError, build_dataset
from fastreid.data.datasets import cuhk03_release
from fastreid.data.datasets.cuhk03_release import image_name, prepare_cuhk03

h5py = pytest.importorskip("h5py")

H, W = 8, 6
NUM_PIDS = (3, 4, 5, 6, 3)  # per camera pair
KIND_CODE = {"labeled": 1, "detected": 2}


def _slots(kind, campair, pid):
    """Non-empty slots (0-9) of an id in the fake release: a few empty cells, one view-1-only id and, in the
    detected boxes, one id without any image."""
    if kind == "detected" and (campair, pid) == (5, 3):
        return []
    if (campair, pid) == (2, 4):
        return list(range(5))
    dropped = {(campair * 7 + pid * 3 + KIND_CODE[kind]) % 10, (campair + pid) % 10 if pid % 2 else None}
    return [s for s in range(10) if s not in dropped]


def _pixels(kind, campair, pid, slot):
    """(H, W, 3) uint8 image encoding its origin, with a position ramp that shows any transposition."""
    img = np.empty((H, W, 3), dtype=np.uint8)
    img[..., 0] = campair * 40 + pid
    img[..., 1] = slot * 20 + KIND_CODE[kind]
    img[..., 2] = np.arange(H * W).reshape(H, W)
    return img


def _testsets():
    rng = np.random.default_rng(0)
    ids = [(c, p) for c, n in enumerate(NUM_PIDS, start=1) for p in range(1, n + 1)]
    return [[ids[i] for i in rng.choice(len(ids), 2, replace=False)] for _ in range(20)]


def _write_release(data_dir):
    """A tiny cuhk-03.mat in the MATLAB v7.3 layout: everything stored transposed, cells as object references."""
    path = os.path.join(data_dir, "cuhk03_release", "cuhk-03.mat")
    os.makedirs(os.path.dirname(path))
    with h5py.File(path, "w") as f:
        refs = f.create_group("#refs#")
        counter = iter(range(10 ** 6))

        def store(data, empty=False):
            dset = refs.create_dataset(str(next(counter)), data=data)
            if empty:
                dset.attrs["MATLAB_empty"] = 1
            return dset.ref

        for kind in ("labeled", "detected"):
            pairs = np.empty((1, 5), dtype=h5py.ref_dtype)
            for c, n in enumerate(NUM_PIDS, start=1):
                grid = np.empty((10, n), dtype=h5py.ref_dtype)
                for p in range(1, n + 1):
                    present = _slots(kind, c, p)
                    for s in range(10):
                        grid[s, p - 1] = (store(_pixels(kind, c, p, s).T) if s in present
                                          else store(np.zeros(2, dtype=np.uint64), empty=True))
                pairs[0, c - 1] = store(grid)
            f.create_dataset(kind, data=pairs)
        tests = np.empty((1, 20), dtype=h5py.ref_dtype)
        for i, pairs in enumerate(_testsets()):
            tests[0, i] = store(np.array(pairs, dtype=np.float64).T)
        f.create_dataset("testsets", data=tests)
    return path


@pytest.fixture
def release(tmp_path):
    data_dir = tmp_path / "cuhk03"
    _write_release(str(data_dir))
    return data_dir


def _expected_split(kind, test_pairs):
    """(train, test) as sorted (file name, label, camid) lists, computed from the fake release's spec."""
    ids = [(c, p) for c, n in enumerate(NUM_PIDS, start=1) for p in range(1, n + 1) if _slots(kind, c, p)]
    subsets = {"train": [i for i in ids if i not in test_pairs], "test": [i for i in ids if i in test_pairs]}
    out = {}
    for name, members in subsets.items():
        out[name] = sorted((f"{c}_{p:03d}_{1 + (s >= 5)}_{s + 1:02d}.png", label, int(s >= 5))
                           for label, (c, p) in enumerate(sorted(members)) for s in _slots(kind, c, p))
    return out["train"], out["test"]


def _as_tuples(records):
    return sorted((os.path.basename(path), pid, camid) for path, pid, camid in records)


def _snapshot(folder):
    """Every file and folder under ``folder`` with its mtime (ns)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, folder)] = os.stat(path).st_mtime_ns
    return out


def _products(data_dir):
    return sorted(n for n in os.listdir(data_dir) if n != "cuhk03_release")


def test_image_name():
    assert image_name(2, 7, 0) == "2_007_1_01.png"
    assert image_name(5, 123, 5) == "5_123_2_06.png"


def test_extracts_every_image_with_its_pixels(release):
    prepare_cuhk03(str(release))
    for kind in ("labeled", "detected"):
        folder = release / f"images_{kind}"
        expected = {image_name(c, p, s): (c, p, s) for c, n in enumerate(NUM_PIDS, start=1)
                    for p in range(1, n + 1) for s in _slots(kind, c, p)}
        assert sorted(os.listdir(folder)) == sorted(expected)
        for name, (c, p, s) in expected.items():
            np.testing.assert_array_equal(np.asarray(Image.open(folder / name)), _pixels(kind, c, p, s))


def test_classic_splits_follow_the_testsets(release):
    prepare_cuhk03(str(release))
    testsets = _testsets()
    for kind in ("labeled", "detected"):
        splits = json.loads((release / f"splits_classic_{kind}.json").read_text())
        assert len(splits) == 20
        for split, test_pairs in zip(splits, testsets):
            train, test = _expected_split(kind, test_pairs)
            assert _as_tuples(split["train"]) == train
            assert _as_tuples(split["query"]) == test and split["gallery"] == split["query"]
            assert all(os.path.dirname(r[0]) == str(release / f"images_{kind}") for r in split["train"])
            assert {r[1] for r in split["train"]} == set(range(split["num_train_pids"]))
            assert split["num_query_imgs"] == len(test) and split["num_train_imgs"] == len(train)
            assert not {r[0][:5] for r in train} & {r[0][:5] for r in test}  # "<campair>_<pid>" disjoint


def test_dataset_from_release_only_via_config(release, tmp_path):
    cfg = get_cfg()
    cfg.merge_from_list(["DATASETS.ROOT", str(tmp_path), "DATASETS.CUHK03.LABELED", True,
                         "DATASETS.CUHK03.CLASSIC_SPLIT", True, "DATASETS.CUHK03.SPLIT_ID", 3])
    ds = build_dataset("CUHK03", cfg)
    train, test = _expected_split("labeled", _testsets()[3])
    assert _as_tuples(ds.query) == test and _as_tuples(ds.gallery) == test
    assert all(os.path.exists(r[0]) for r in ds.query)
    assert sorted({r[1] for r in ds.train}) == sorted({f"CUHK03_{r[1]}" for r in train})
    assert {r[2] for r in ds.train} == {"CUHK03_0", "CUHK03_1"}
    with pytest.raises(DatasetNotFoundError, match="cuhk03_new_protocol_config_detected.mat"):
        build_dataset("CUHK03", root=str(tmp_path))


def test_missing_everything_names_the_release(tmp_path):
    os.makedirs(tmp_path / "cuhk03")
    with pytest.raises(DatasetNotFoundError, match=r"cuhk03_release.cuhk-03\.mat"):
        build_dataset("CUHK03", root=str(tmp_path))


def test_second_call_rewrites_nothing(release, monkeypatch):
    prepare_cuhk03(str(release))
    before = _snapshot(release)
    monkeypatch.setitem(sys.modules, "h5py", None)  # nothing to do, so the .mat is not even opened
    prepare_cuhk03(str(release))
    assert _snapshot(release) == before


def test_interrupted_extraction_leaves_nothing_and_reruns(release, monkeypatch):
    real_fromarray = Image.fromarray
    calls = []

    def failing_fromarray(arr, *args, **kwargs):
        calls.append(1)
        if len(calls) == 30:
            raise RuntimeError("killed mid-extraction")
        return real_fromarray(arr, *args, **kwargs)

    monkeypatch.setattr(cuhk03_release.Image, "fromarray", failing_fromarray)
    with pytest.raises(RuntimeError, match="mid-extraction"):
        prepare_cuhk03(str(release))
    assert _products(release) == []
    monkeypatch.undo()

    def failing_dumps(obj, *args, **kwargs):
        raise OSError("disk full")

    # The split file goes through fastreid.utils.file_io.atomic_write, whose own tests cover a write that
    # dies half-way; here: a failure leaves the finished image folder and no split or temp file.
    monkeypatch.setattr(cuhk03_release.json, "dumps", failing_dumps)
    with pytest.raises(OSError, match="disk full"):
        prepare_cuhk03(str(release))
    assert _products(release) == ["images_labeled"]
    monkeypatch.undo()

    prepare_cuhk03(str(release))
    assert _products(release) == ["images_detected", "images_labeled", "splits_classic_detected.json",
                                  "splits_classic_labeled.json"]
    split = json.loads((release / "splits_classic_labeled.json").read_text())[0]
    assert _as_tuples(split["train"]) == _expected_split("labeled", _testsets()[0])[0]
    assert len(os.listdir(release / "images_labeled")) == sum(
        len(_slots("labeled", c, p)) for c, n in enumerate(NUM_PIDS, start=1) for p in range(1, n + 1))


def test_missing_h5py_names_file_and_fix(release, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"cuhk-03\.mat.*pip install h5py"):
        prepare_cuhk03(str(release))
