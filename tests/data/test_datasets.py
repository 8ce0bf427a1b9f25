import os

import numpy as np
import pytest
from scipy.io import savemat

from fastreid.config import get_cfg
from fastreid.data import build_train_set
from fastreid.data.datasets import (DATASET_REGISTRY, DatasetNotFoundError, ImageDataset, build_dataset,
                                    resolve_root)

from .conftest import write_images, write_text


def _ids(records):
    return sorted({r[1] for r in records})


def _market_tree(root, folder="Market-1501-v15.09.15"):
    base = os.path.join(root, folder)
    write_images(os.path.join(base, "bounding_box_train"),
                 ["0002_c1s1_000451_00.jpg", "0002_c2s1_000551_01.jpg", "0007_c3s1_000151_00.jpg",
                  "-1_c1s1_000001_00.jpg"])
    write_images(os.path.join(base, "query"), ["0001_c1s1_001051_00.jpg", "0003_c4s1_000211_00.jpg"])
    write_images(os.path.join(base, "bounding_box_test"),
                 ["0001_c2s1_000301_00.jpg", "0003_c5s1_000101_00.jpg", "0000_c1s1_000000_00.jpg",
                  "-1_c6s1_000002_00.jpg"])
    write_images(os.path.join(base, "images"), ["0000_c1s9_900000_00.jpg", "0000_c2s9_900001_00.jpg"])
    return base


def test_market1501_junk_distractors_and_prefixes(tmp_path):
    _market_tree(tmp_path)
    ds = DATASET_REGISTRY.get("Market1501")(root=str(tmp_path))
    assert _ids(ds.train) == ["Market1501_2", "Market1501_7"]
    assert {r[2] for r in ds.train} == {"Market1501_0", "Market1501_1", "Market1501_2"}
    assert [(r[1], r[2]) for r in ds.query] == [(1, 0), (3, 3)]
    assert _ids(ds.gallery) == [0, 1, 3]  # junk -1 dropped, distractor 0 kept
    assert len(ds.gallery) == 3
    with_500k = DATASET_REGISTRY.get("Market1501")(root=str(tmp_path), market1501_500k=True)
    assert len(with_500k.gallery) == 5


def test_market1501_from_config_and_combineall(tmp_path):
    _market_tree(tmp_path)
    cfg = get_cfg()
    cfg.merge_from_list(["DATASETS.ROOT", str(tmp_path), "DATASETS.MARKET1501.WITH_500K", True])
    assert len(build_dataset("Market1501", cfg).gallery) == 5
    ds = build_dataset("Market1501", cfg, combineall=True)
    # query + gallery ids join train in their own scope; distractor 0 and the 500k images are not persons.
    assert _ids(ds.train) == ["Market1501_2", "Market1501_7", "Market1501_test_1", "Market1501_test_3"]


def test_missing_root_names_folder_and_readme(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        build_dataset("Market1501", root=str(tmp_path))
    assert "Market-1501-v15.09.15" in str(e.value) and "datasets/README.md" in str(e.value)
    os.makedirs(tmp_path / "Market-1501-v15.09.15" / "query")
    with pytest.raises(DatasetNotFoundError, match="bounding_box_train"):
        build_dataset("Market1501", root=str(tmp_path))


def test_resolve_root(monkeypatch):
    monkeypatch.delenv("FASTREID_DATASETS", raising=False)
    assert resolve_root("") == "datasets"
    monkeypatch.setenv("FASTREID_DATASETS", "/data/reid")
    assert resolve_root("") == "/data/reid" and resolve_root("/x") == "/x"


def test_duke(tmp_path):
    base = tmp_path / "DukeMTMC-reID"
    write_images(base / "bounding_box_train", ["0001_c2_f0046182.jpg", "0001_c5_f0050000.jpg"])
    write_images(base / "query", ["0005_c8_f0000001.jpg"])
    write_images(base / "bounding_box_test", ["0005_c1_f0000002.jpg", "5000_c3_f0000003.jpg"])
    ds = build_dataset("DukeMTMC", root=str(tmp_path))
    assert {r[2] for r in ds.train} == {"DukeMTMC_1", "DukeMTMC_4"}
    assert ds.query[0][1:] == (5, 7) and _ids(ds.gallery) == [5, 5000]


@pytest.mark.parametrize("version,train_dir,test_dir", [("MSMT17_V2", "mask_train_v2", "mask_test_v2"),
                                                        ("MSMT17_V1", "train", "test")])
def test_msmt17(tmp_path, version, train_dir, test_dir):
    base = tmp_path / version
    write_images(base / train_dir, ["0000/0000_000_01_0303morning_0015_0.jpg", "0001/0001_001_15_0303noon_0001_1.jpg"])
    write_images(base / test_dir, ["0000/0000_000_03_0303morning_0100_0.jpg", "0000/0000_001_07_0303noon_0002_0.jpg"])
    write_text(base / "list_train.txt", ["0000/0000_000_01_0303morning_0015_0.jpg 0"])
    write_text(base / "list_val.txt", ["0001/0001_001_15_0303noon_0001_1.jpg 1"])
    write_text(base / "list_query.txt", ["0000/0000_000_03_0303morning_0100_0.jpg 0"])
    write_text(base / "list_gallery.txt", ["0000/0000_001_07_0303noon_0002_0.jpg 0"])
    ds = build_dataset("MSMT17", root=str(tmp_path))
    assert [r[1:] for r in ds.train] == [("MSMT17_0", "MSMT17_0"), ("MSMT17_1", "MSMT17_14")]
    assert ds.query[0][1:] == (0, 2) and ds.gallery[0][1:] == (0, 6)
    assert all(os.path.exists(r[0]) for r in ds.train + ds.query + ds.gallery)


def test_cuhk03_new_protocol_mat_and_classic_json(tmp_path):
    base = tmp_path / "cuhk03"
    names = ["1_001_1_01.png", "1_001_2_06.png", "1_002_1_01.png", "1_002_2_07.png", "2_003_1_01.png",
             "2_003_2_06.png"]
    write_images(base / "images_detected", names)
    filelist = np.empty((len(names), 1), dtype=object)
    filelist[:, 0] = names
    savemat(base / "cuhk03_new_protocol_config_detected.mat", {
        "filelist": filelist, "labels": np.array([[1], [1], [2], [2], [3], [3]]),
        "camId": np.array([[1], [2], [1], [2], [1], [2]]), "train_idx": np.array([[1], [2]]),
        "query_idx": np.array([[3], [5]]), "gallery_idx": np.array([[4], [6]])})
    ds = build_dataset("CUHK03", root=str(tmp_path))
    assert _ids(ds.train) == ["CUHK03_1"] and [r[1:] for r in ds.query] == [(2, 0), (3, 0)]
    assert os.path.basename(ds.gallery[0][0]) == "1_002_2_07.png"
    with pytest.raises(DatasetNotFoundError, match="splits_classic_detected.json"):
        build_dataset("CUHK03", root=str(tmp_path), cuhk03_classic_split=True)
    write_images(base / "images_labeled", names)
    split = {"train": [["/elsewhere/images_labeled/1_001_1_01.png", 0, 0]],
             "query": [["/elsewhere/images_labeled/1_002_1_01.png", 2, 0]],
             "gallery": [["/elsewhere/images_labeled/1_002_2_07.png", 2, 1]]}
    import json
    (base / "splits_classic_labeled.json").write_text(json.dumps([split, split]))
    cfg = get_cfg()
    cfg.merge_from_list(["DATASETS.ROOT", str(tmp_path), "DATASETS.CUHK03.LABELED", True,
                         "DATASETS.CUHK03.CLASSIC_SPLIT", True, "DATASETS.CUHK03.SPLIT_ID", 1])
    ds = build_dataset("CUHK03", cfg)
    assert ds.query[0][0] == str(base / "images_labeled" / "1_002_1_01.png")


def _check_split(ds, n_ids):
    train_ids = {int(str(r[1]).rsplit("_", 1)[1]) for r in ds.train}
    test_ids = {r[1] for r in ds.query}
    assert train_ids and test_ids and not train_ids & test_ids
    assert len(train_ids) == n_ids // 2
    assert all(r[2] == 0 for r in ds.query)


def test_cuhk01_viper_ilids_split_deterministic(tmp_path):
    write_images(tmp_path / "cuhk01" / "campus", [f"{p:04d}{i:03d}.png" for p in range(1, 7) for i in range(1, 5)])
    write_images(tmp_path / "viper" / "VIPeR" / "cam_a", [f"{i:03d}_0.bmp" for i in range(6)])
    write_images(tmp_path / "viper" / "VIPeR" / "cam_b", [f"{i:03d}_90.bmp" for i in range(6)])
    write_images(tmp_path / "ilids" / "i-LIDS_Pedestrian" / "Persons",
                 [f"{p:04d}{i:03d}.jpg" for p in range(1, 7) for i in range(1, 4)])
    for name in ("CUHK01", "VIPeR", "iLIDS"):
        a = build_dataset(name, root=str(tmp_path), split_id=0)
        _check_split(a, 6)
        assert a.train == build_dataset(name, root=str(tmp_path), split_id=0).train
    cuhk01 = build_dataset("CUHK01", root=str(tmp_path))
    assert {r[2] for r in cuhk01.gallery} == {1} and len(cuhk01.query) == 2 * 3
    splits = {tuple(_ids(build_dataset("VIPeR", root=str(tmp_path), split_id=s).query)) for s in range(5)}
    assert len(splits) > 1


def test_grid_and_prid(tmp_path):
    grid = tmp_path / "grid" / "underground_reid"
    write_images(grid / "probe", [f"{p:04d}_1_25004_107_32_130_415.jpeg" for p in range(1, 5)])
    write_images(grid / "gallery", [f"{p:04d}_2_25004_107_32_130_415.jpeg" for p in range(0, 5)])
    ds = build_dataset("GRID", root=str(tmp_path))
    _check_split(ds, 4)
    assert 0 in _ids(ds.gallery)
    prid = tmp_path / "prid2011" / "prid_2011" / "single_shot"
    write_images(prid / "cam_a", ["person_0001.png", "person_0002.png", "person_0201.png"])
    write_images(prid / "cam_b", ["person_0001.png", "person_0002.png", "person_0300.png"])
    ds = build_dataset("PRID", root=str(tmp_path))
    assert len(ds.query) == 1 and 300 in _ids(ds.gallery) and 201 not in _ids(ds.gallery + ds.query)


def test_sensereid_cuhksysu_university(tmp_path):
    sense = tmp_path / "sensereid" / "SenseReID"
    write_images(sense / "test_probe", ["0001_0.jpg", "0002_0.jpg"])
    write_images(sense / "test_gallery", ["0001_1.jpg", "0003_1.jpg"])
    ds = build_dataset("SenseReID", root=str(tmp_path))
    assert ds.train == [] and [r[1] for r in ds.query] == [1]
    write_images(tmp_path / "CUHK-SYSU" / "cropped_images", ["p11_s14.jpg", "p11_s15.jpg", "p12_s3.jpg"])
    assert len(build_dataset("cuhkSYSU", root=str(tmp_path)).train) == 3
    uni = tmp_path / "University-Release"
    write_images(uni / "train", ["satellite/0001/0001.jpg", "drone/0001/image-01.jpeg", "street/0002/1.jpg"])
    write_images(uni / "test", ["query_drone/0005/image-01.jpeg", "gallery_satellite/0005/0005.jpg",
                                "gallery_satellite/0006/0006.jpg"])
    ds = build_dataset("University1652", root=str(tmp_path))
    assert {r[2] for r in ds.train} == {"University1652_0", "University1652_1", "University1652_2"}
    assert ds.query[0][1:] == (5, 1) and _ids(ds.gallery) == [5, 6]


def test_veri(tmp_path):
    base = tmp_path / "veri"
    write_images(base / "image_train", ["0001_c001_00016450_0.jpg", "0001_c012_00016460_0.jpg"])
    write_images(base / "image_query", ["0002_c002_00030600_0.jpg"])
    write_images(base / "image_test", ["0002_c020_00030605_1.jpg", "0003_c003_00030700_0.jpg"])
    ds = build_dataset("VeRi", root=str(tmp_path))
    assert {r[2] for r in ds.train} == {"VeRi_0", "VeRi_11"} and ds.gallery[0][2] == 19


def test_vehicleid_sizes(tmp_path):
    base = tmp_path / "vehicleid"
    imgs = [f"{i:07d}" for i in range(12)]
    write_images(base / "image", [f"{i}.jpg" for i in imgs])
    split = base / "train_test_split"
    write_text(split / "train_list.txt", [f"{imgs[i]} {100 + i // 2}" for i in range(4)])
    write_text(split / "test_list_800.txt", [f"{imgs[i]} {i // 3}" for i in range(4, 10)])
    write_text(split / "test_list_1600.txt", [f"{imgs[i]} {i // 2}" for i in range(4, 12)])
    small = build_dataset("SmallVehicleID", root=str(tmp_path))
    assert len(small.gallery) == len(_ids(small.gallery)) == 3 and len(small.query) == 3
    assert set(_ids(small.query)) <= set(_ids(small.gallery))
    assert len({r[2] for r in small.query + small.gallery}) == 6  # one camera per test image
    assert len(build_dataset("MediumVehicleID", root=str(tmp_path)).gallery) == 4
    cfg = get_cfg()
    cfg.merge_from_list(["DATASETS.ROOT", str(tmp_path), "DATASETS.VEHICLEID.TEST_SIZE", 1600])
    assert len(build_dataset("VehicleID", cfg).gallery) == 4
    assert len(build_dataset("SmallVehicleID", cfg).gallery) == 3  # the size of a sized variant is fixed
    with pytest.raises(DatasetNotFoundError, match="test_list_2400.txt"):
        build_dataset("LargeVehicleID", root=str(tmp_path))


def test_veriwild(tmp_path):
    base = tmp_path / "VERI-Wild"
    keys = ["00001/000001", "00001/000002", "00002/000010", "00002/000011", "00003/000020"]
    write_images(base / "images", [f"{k}.jpg" for k in keys])
    split = base / "train_test_split"
    write_text(split / "vehicle_info.txt", ["id/image;Camera ID;Time;Model;Type;Color"] +
               [f"{k};{i + 1};2018-03-11 10:44:51;Audi;SUV;white" for i, k in enumerate(keys)])
    write_text(split / "train_list.txt", keys[:2])
    write_text(split / "test_5000_query.txt", keys[2:3])
    write_text(split / "test_5000.txt", keys[3:])
    ds = build_dataset("MediumVeRiWild", root=str(tmp_path))
    assert ds.query[0][1:] == (2, 3) and _ids(ds.gallery) == [2, 3]
    with pytest.raises(DatasetNotFoundError, match="test_3000_query.txt"):
        build_dataset("VeRiWild", root=str(tmp_path))


def test_custom_folders_and_lists(tmp_path):
    base = tmp_path / "custom"
    write_images(base / "train", ["0002_c1_0001.jpg", "0002_c2_0002.jpg", "-1_c1_0003.jpg"])
    write_images(base / "query", ["0005_c1_0001.jpg"])
    write_images(base / "gallery", ["0005_c2_0002.jpg", "0006_c2_0003.jpg"])
    cfg = get_cfg()
    cfg.merge_from_list(["DATASETS.ROOT", str(tmp_path), "DATASETS.NAMES", ("CustomReID",)])
    ds = build_dataset("CustomReID", cfg)
    assert len(ds.train) == 2 and ds.query[0][1:] == (5, 1)
    write_text(base / "q.txt", ["# path pid camid", "gallery/0006_c2_0003.jpg 6 0"])
    cfg.merge_from_list(["DATASETS.CUSTOM.QUERY_LIST", "q.txt"])
    assert build_dataset("CustomReID", cfg).query[0][1:] == (6, 0)
    write_text(base / "bad.txt", ["gallery/0006_c2_0003.jpg six 0"])
    cfg.merge_from_list(["DATASETS.CUSTOM.QUERY_LIST", "bad.txt"])
    with pytest.raises(ValueError, match=r"bad.txt:1: pid 'six'"):
        build_dataset("CustomReID", cfg)
    write_text(base / "same_cam.txt", ["gallery/0006_c2_0003.jpg 6 2"])
    cfg.merge_from_list(["DATASETS.CUSTOM.QUERY_LIST", "same_cam.txt"])
    with pytest.raises(ValueError, match="no query has a gallery image"):
        build_dataset("CustomReID", cfg)
    write_images(base / "train", ["person.jpg"])
    with pytest.raises(ValueError, match="person.jpg"):
        build_dataset("CustomReID", root=str(tmp_path))


def test_user_registered_dataset_and_multi_dataset_training(tmp_path):
    paths = write_images(tmp_path / "mine", ["a.jpg", "b.jpg", "c.jpg"])
    name = "ToyUserReID"
    if name not in DATASET_REGISTRY:
        @DATASET_REGISTRY.register()
        class ToyUserReID(ImageDataset):
            def __init__(self, root="datasets", **kwargs):
                super().__init__([(paths[0], 12, 0), (paths[1], 12, 1), (paths[2], 3, 0)], [], [], **kwargs)
    _market_tree(tmp_path)
    cfg = get_cfg()
    cfg.merge_from_list(["DATASETS.ROOT", str(tmp_path), "DATASETS.NAMES", ("Market1501", name)])
    train_set = build_train_set(cfg)
    # Market ids 2, 7 and the user's 3, 12 stay apart; labels follow sorted names: Market1501_* < ToyUserReID_*.
    assert train_set.num_classes == 4 and train_set.num_cameras == 5
    assert train_set.pid_dict == {"Market1501_2": 0, "Market1501_7": 1, "ToyUserReID_3": 2, "ToyUserReID_12": 3}
    assert sorted(set(train_set.set_ids)) == [0, 1]
    with pytest.raises(KeyError, match="Market1501"):
        build_dataset("Market1502", cfg)


def _grid_partitions(path, train_sets):
    """``features_and_partitions.mat`` as published: ``trainIdxAll``, a 1×10 cell of structs whose third
    field holds the partition's training ids."""
    cell = np.empty((1, len(train_sets)), dtype=object)
    fields = [("idxProbe", "O"), ("idxGallery", "O"), ("idxTrain", "O")]
    for k, ids in enumerate(train_sets):
        cell[0, k] = np.array([(np.array([[0]]), np.array([[0]]), np.array([ids], dtype=float))], dtype=fields)
    savemat(str(path), {"trainIdxAll": cell})


def test_grid_official_partitions_and_real_cameras(tmp_path):
    grid = tmp_path / "grid" / "underground_reid"
    write_images(grid / "probe", [f"{p:04d}_{p % 8 + 1}_25004_107_32_130_415.jpeg" for p in range(1, 7)])
    write_images(grid / "gallery", [f"{p:04d}_{(p + 3) % 8 + 1}_25004_107_32_130_415.jpeg" for p in range(0, 7)])
    _grid_partitions(grid / "features_and_partitions.mat", [[1, 2, 3] if k % 2 == 0 else [2, 4, 6] for k in range(10)])
    for split_id, train_ids in ((0, {1, 2, 3}), (1, {2, 4, 6})):
        ds = build_dataset("GRID", root=str(tmp_path), split_id=split_id)
        assert {int(str(r[1]).rsplit("_", 1)[1]) for r in ds.train} == train_ids
        test_ids = {1, 2, 3, 4, 5, 6} - train_ids
        assert sorted((r[1], r[2]) for r in ds.query) == sorted((p, p % 8) for p in test_ids)
        assert sorted((r[1], r[2]) for r in ds.gallery) == sorted([(p, (p + 3) % 8) for p in test_ids] + [(0, 3)])
    with pytest.raises(ValueError, match="outside the 10 partitions"):
        build_dataset("GRID", root=str(tmp_path), split_id=10)
