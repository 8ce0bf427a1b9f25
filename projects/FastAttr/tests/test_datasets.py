"""FastAttr's datasets: PA-100K and Market-1501-attribute on generated fixture trees, and the synthetic labels."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from fastreid.data.datasets import DATASET_REGISTRY, DatasetNotFoundError, SyntheticPerson, build_dataset

import fast_attr  # noqa: F401 - registers the datasets (conftest.py puts it on sys.path)
from fastreid.data.datasets.synthetic import synthetic_identity
from fastreid.data.datasets.synthetic_render import CLOTH_PALETTE

PA_NAMES = ["Female", "AgeOver60", "Hat", "Backpack"]


def _cell(strings):
    return np.array(strings, dtype=object).reshape(-1, 1)


def _image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 8), (10, 20, 30)).save(path)


def _pa100k(root):
    folder = root / "PA-100K"
    rng = np.random.default_rng(0)
    mat, start = {"attributes": _cell(PA_NAMES)}, 1
    for split, n in (("train", 5), ("val", 2), ("test", 3)):
        names = [f"{start + i:06d}.jpg" for i in range(n)]
        start += n
        for name in names:
            _image(folder / "data" / name)
        mat[f"{split}_images_name"] = _cell(names)
        mat[f"{split}_label"] = rng.integers(0, 2, (n, len(PA_NAMES))).astype(np.uint8)
    savemat(folder / "annotation.mat", mat)
    return mat


def test_pa100k_reads_the_published_annotation_layout(tmp_path):
    from fast_attr import PA100K

    mat = _pa100k(tmp_path)
    dataset = build_dataset("PA100K", root=str(tmp_path), verbose=False)
    assert isinstance(dataset, PA100K) and dataset.attribute_names == tuple(PA_NAMES)
    for records, split in ((dataset.train, "train"), (dataset.val, "val"), (dataset.test, "test")):
        names = [str(n) for n in mat[f"{split}_images_name"].ravel()]
        assert [r[0] for r in records] == [str(tmp_path / "PA-100K" / "data" / n) for n in names]
        np.testing.assert_array_equal(np.stack([r[3] for r in records]), mat[f"{split}_label"])
    assert dataset.gallery == [] and dataset.query is dataset.test


def test_pa100k_names_the_missing_file_and_the_layout(tmp_path):
    (tmp_path / "PA-100K" / "data").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match=r"(?s)PA-100K/annotation.mat.*test_images_name"):
        build_dataset("PA100K", root=str(tmp_path))


def _market_attr(root, train_ids, test_ids):
    folder = root / "Market-1501-v15.09.15"
    for sub, ids in (("bounding_box_train", train_ids), ("bounding_box_test", test_ids), ("query", test_ids)):
        for pid in ids:
            for cam in (1, 2):
                _image(folder / sub / f"{pid:04d}_c{cam}s1_000101_01.jpg")
    _image(folder / "bounding_box_test" / "0000_c1s1_000001_01.jpg")  # distractor: no attributes
    _image(folder / "bounding_box_test" / "-1_c1s1_000001_01.jpg")  # junk
    rng = np.random.default_rng(1)
    tables = {}
    for split, ids in (("train", train_ids), ("test", test_ids)):
        n = len(ids)
        tables[split] = {"age": rng.integers(1, 5, (1, n)).astype(float),
                         "hat": rng.integers(1, 3, (1, n)).astype(float),
                         "backpack": rng.integers(1, 3, (1, n)).astype(float),
                         "image_index": np.array([f"{pid:04d}" for pid in ids], dtype=object)}
    savemat(folder / "market_attribute.mat", {"market_attribute": tables})
    return tables


def test_market1501_attr_labels_every_image_with_its_identity_attributes(tmp_path):
    tables = _market_attr(tmp_path, train_ids=[2, 7, 11], test_ids=[1, 3])
    dataset = build_dataset("Market1501Attr", root=str(tmp_path), verbose=False)
    assert dataset.attribute_names == ("age_young", "age_teenager", "age_adult", "age_old", "backpack", "hat")
    for records, split in ((dataset.train, "train"), (dataset.test, "test")):
        table = tables[split]
        ids = [int(s) for s in table["image_index"]]
        pids = [int(Path(r[0]).name[:4]) for r in records]  # train ids are dataset-scoped strings
        assert sorted(set(pids)) == sorted(ids) and len(records) == 2 * len(ids)
        for pid, (_, _, _, attributes) in zip(pids, records):
            i = ids.index(pid)
            age = int(table["age"][0, i])
            expected = [float(age == k) for k in (1, 2, 3, 4)] + [table["backpack"][0, i] - 1, table["hat"][0, i] - 1]
            assert attributes.tolist() == expected


def test_market1501_attr_errors_name_the_missing_file_or_identity(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="Market-1501-v15.09.15"):
        build_dataset("Market1501Attr", root=str(tmp_path))
    _market_attr(tmp_path, train_ids=[2], test_ids=[1])
    (tmp_path / "Market-1501-v15.09.15" / "market_attribute.mat").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"(?s)market_attribute.mat.*image_index"):
        build_dataset("Market1501Attr", root=str(tmp_path))
    _market_attr(tmp_path, train_ids=[2], test_ids=[1])
    _image(tmp_path / "Market-1501-v15.09.15" / "bounding_box_train" / "0005_c1s1_000101_01.jpg")
    with pytest.raises(ValueError, match="identity 0005 .* has no attributes"):
        build_dataset("Market1501Attr", root=str(tmp_path))


def test_synthetic_attributes_follow_the_generator_identity():
    from fast_attr import ATTRIBUTE_NAMES, identity_attributes
    from fast_attr.datasets import CLOTH_COLOURS

    assert len(CLOTH_COLOURS) == len(CLOTH_PALETTE) and len(ATTRIBUTE_NAMES) == 9 + 2 * len(CLOTH_COLOURS)
    seen = np.zeros(len(ATTRIBUTE_NAMES))
    for pid in range(1, 41):
        person = synthetic_identity(0, pid)
        value = dict(zip(ATTRIBUTE_NAMES, identity_attributes(person).tolist()))
        assert value["hat"] == person.hat and value["long_hair"] == person.long_hair
        assert value["long_sleeves"] == person.long_sleeves
        assert (value["backpack"], value["shoulder_bag"]) == (person.bag == 1, person.bag == 2)
        assert (value["top_stripes"], value["top_checks"]) == (person.top_pattern in (1, 2), person.top_pattern == 3)
        assert (value["shorts"], value["skirt"]) == (person.bottom_type == 1, person.bottom_type == 2)
        for part, colour in (("top", person.top), ("bottom", person.bottom)):
            on = [c for c in CLOTH_COLOURS if value[f"{part}_{c}"]]
            assert on == [CLOTH_COLOURS[int(np.argmin(np.abs(CLOTH_PALETTE - colour).sum(1)))]]
        seen += identity_attributes(person)
    assert seen[:9].all(), "every shape attribute occurs among 40 identities"


def test_synthetic_person_attr_splits_like_synthetic_person(tmp_path):
    from fast_attr import SyntheticPersonAttr, identity_attributes

    kwargs = dict(num_ids=8, num_cameras=2, images_per_id=3, height=16, width=8, verbose=False)
    dataset = SyntheticPersonAttr(str(tmp_path), **kwargs)
    person = SyntheticPerson(str(tmp_path), **kwargs)
    assert DATASET_REGISTRY.get("SyntheticPersonAttr") is SyntheticPersonAttr
    assert len(dataset.train) == len(person.train) and len(dataset.test) == len(person.query) + len(person.gallery)
    assert {Path(r[0]).name[:4] for r in dataset.train}.isdisjoint({Path(r[0]).name[:4] for r in dataset.test})
    for path, _, _, attributes in dataset.train + dataset.test:
        pid = int(Path(path).name[:4])
        np.testing.assert_array_equal(attributes, identity_attributes(synthetic_identity(0, pid)))
