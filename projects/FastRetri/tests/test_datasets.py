"""FastRetri's datasets on generated fixture trees in their published layouts, and the synthetic class set."""
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from fastreid.config import get_cfg
from fastreid.data import check_datasets
from fastreid.data.datasets import DATASET_REGISTRY, DatasetNotFoundError, SyntheticPerson, build_dataset

import fast_retri  # noqa: F401 - registers the datasets (conftest.py puts it on sys.path)


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _check_protocol(dataset, train, test):
    """Train records ``(path, class, 0)`` (ids scoped), test records ``(path, class, index)`` as query and gallery."""
    assert [(r[0], int(r[1].rsplit("_", 1)[1])) for r in dataset.train] == train
    assert all(r[2].endswith("_0") for r in dataset.train)
    assert dataset.test == dataset.query == dataset.gallery == [(p, c, i) for i, (p, c) in enumerate(test)]


def test_cub_splits_its_200_classes_in_halves(tmp_path):
    folder = tmp_path / "CUB_200_2011"
    classes = [1, 100, 101, 200, 57, 150]
    paths = [f"{c:03d}.Bird/img_{i}.jpg" for i, c in enumerate(classes, 1)]
    _write(folder / "images.txt", "".join(f"{i} {p}\n" for i, p in enumerate(paths, 1)))
    _write(folder / "image_class_labels.txt", "".join(f"{i} {c}\n" for i, c in enumerate(classes, 1)))
    _write(folder / "train_test_split.txt", "".join(f"{i} {i % 2}\n" for i in range(1, 7)))  # not the protocol
    (folder / "images").mkdir()
    dataset = build_dataset("CUB", root=str(tmp_path), verbose=False)
    labelled = [(str(folder / "images" / p), c) for p, c in zip(paths, classes)]
    _check_protocol(dataset, [x for x in labelled if x[1] <= 100], [x for x in labelled if x[1] > 100])


def _cars_annos(path, rows):
    records = np.zeros((1, len(rows)), dtype=[("relative_im_path", "O"), ("bbox_x1", "O"), ("class", "O"),
                                              ("test", "O")])
    for i, (name, label, test) in enumerate(rows):
        records[0, i] = (name, 1.0, np.uint8(label), np.uint8(test))
    savemat(path, {"annotations": records, "class_names": np.array(["a"], dtype=object)})


def test_cars196_splits_its_196_classes_in_halves(tmp_path):
    folder = tmp_path / "CARS196"
    folder.mkdir()
    rows = [("car_ims/000001.jpg", 1, 0), ("car_ims/000002.jpg", 98, 1), ("car_ims/000003.jpg", 99, 0),
            ("car_ims/000004.jpg", 196, 1), ("car_ims/000005.jpg", 120, 0)]
    _cars_annos(folder / "cars_annos.mat", rows)
    dataset = build_dataset("Cars196", root=str(tmp_path), verbose=False)
    labelled = [(str(folder / name), c) for name, c, _ in rows]
    _check_protocol(dataset, [x for x in labelled if x[1] <= 98], [x for x in labelled if x[1] > 98])


def test_sop_reads_the_published_lists(tmp_path):
    folder = tmp_path / "Stanford_Online_Products"
    header = "image_id class_id super_class_id path\n"
    train = [("bicycle_final/111_0.JPG", 1), ("bicycle_final/111_1.JPG", 1), ("chair_final/222_0.JPG", 2)]
    test = [("sofa_final/333_0.JPG", 11319), ("sofa_final/333_1.JPG", 11319), ("mug_final/444_0.JPG", 11320)]
    for split, rows in (("train", train), ("test", test)):
        _write(folder / f"Ebay_{split}.txt", header + "".join(f"{i} {c} 3 {p}\n" for i, (p, c) in enumerate(rows, 1)))
    dataset = build_dataset("SOP", root=str(tmp_path), verbose=False)
    _check_protocol(dataset, [(str(folder / p), c) for p, c in train], [(str(folder / p), c) for p, c in test])


@pytest.mark.parametrize("name, missing, layout_line", [
    ("CUB", "CUB_200_2011/images.txt", "image_class_labels.txt"),
    ("Cars196", "CARS196", "cars_annos.mat"),
    ("SOP", "Stanford_Online_Products", "Ebay_train.txt"),
])
def test_a_missing_file_is_named_with_the_expected_layout(tmp_path, name, missing, layout_line):
    with pytest.raises(DatasetNotFoundError, match=f"(?s){missing}.*Expected layout.*{layout_line}"):
        build_dataset(name, root=str(tmp_path))


def test_synthetic_retrieval_classes_are_disjoint_and_pass_fastreid_checks(tmp_path):
    from fast_retri import SyntheticRetrieval, add_retri_config

    kwargs = dict(num_ids=8, num_cameras=2, images_per_id=3, height=16, width=8, verbose=False)
    dataset = SyntheticRetrieval(str(tmp_path), **kwargs)
    person = SyntheticPerson(str(tmp_path), **kwargs)
    assert DATASET_REGISTRY.get("SyntheticRetrieval") is SyntheticRetrieval
    assert [r[0] for r in dataset.train] == [r[0] for r in person.train]
    assert sorted(r[0] for r in dataset.test) == sorted(r[0] for r in person.query + person.gallery)
    train_classes = {int(Path(r[0]).name[:4]) for r in dataset.train}
    assert train_classes.isdisjoint({r[1] for r in dataset.test})
    # Each test image its own camera: fastreid's re-id checks accept the set as query and gallery.
    cfg = get_cfg()
    add_retri_config(cfg)
    cfg.merge_from_list(["DATASETS.NAMES", "('SyntheticRetrieval',)", "DATASETS.TESTS", "('SyntheticRetrieval',)",
                         "DATASETS.ROOT", str(tmp_path), "DATASETS.SYNTHETIC.NUM_IDS", "8",
                         "DATASETS.SYNTHETIC.NUM_CAMERAS", "2", "DATASETS.SYNTHETIC.IMAGES_PER_ID", "3",
                         "DATASETS.SYNTHETIC.HEIGHT", "16", "DATASETS.SYNTHETIC.WIDTH", "8",
                         "SOLVER.IMS_PER_BATCH", "4", "DATALOADER.NUM_INSTANCE", "2"])
    check_datasets(cfg)


def test_combineall_adds_each_test_image_once(tmp_path):
    from fast_retri import SyntheticRetrieval

    kwargs = dict(num_ids=8, num_cameras=2, images_per_id=3, height=16, width=8, verbose=False)
    combined = SyntheticRetrieval(str(tmp_path), combineall=True, **kwargs)
    plain = SyntheticRetrieval(str(tmp_path), **kwargs)
    assert len(combined.train) == len(plain.train) + len(plain.test)
    assert combined.gallery == combined.query == plain.test
