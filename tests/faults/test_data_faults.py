"""Fault injection, data side (issue 11): bad datasets, batch sizes and output folders fail before training.

Each case raises from the checks made when a run is set up or its trainer built (``default_setup``,
``check_datasets``, the loaders), with a message naming the key, the dataset, the split and the folder.
"""
import logging
import os

import pytest

from fastreid.config import get_cfg
from fastreid.data import DatasetCheckError, build_reid_train_loader, build_test_set, check_datasets
from fastreid.data.datasets import SyntheticPerson
from fastreid.data.datasets import synthetic
from fastreid.data.datasets.synthetic import num_train_ids
from fastreid.engine.defaults import default_argument_parser, default_setup, setup_cfg

from ..data.conftest import write_images

MARKET = "Market-1501-v15.09.15"


def _market(root, train=("0002_c1s1_000451_00.jpg", "0002_c2s1_000551_01.jpg", "0007_c3s1_000151_00.jpg",
                         "0007_c1s1_000161_00.jpg"),
            query=("0001_c1s1_001051_00.jpg", "0003_c4s1_000211_00.jpg"),
            gallery=("0001_c2s1_000301_00.jpg", "0003_c5s1_000101_00.jpg")):
    """A tiny Market-1501 tree under ``root``; returns the dataset folder."""
    base = os.path.join(root, MARKET)
    for sub, names in (("bounding_box_train", train), ("query", query), ("bounding_box_test", gallery)):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
        write_images(os.path.join(base, sub), names)
    return base


def _cfg(root, *opts):
    cfg = get_cfg()
    cfg.merge_from_list(["DATASETS.ROOT", str(root), "DATASETS.NAMES", ("Market1501",),
                         "DATASETS.TESTS", ("Market1501",), "SOLVER.IMS_PER_BATCH", 4,
                         "DATALOADER.NUM_INSTANCE", 2, *opts])
    return cfg


def test_a_good_setup_passes(tmp_path, caplog):
    _market(tmp_path)
    with caplog.at_level(logging.INFO, logger="fastreid"):
        check_datasets(_cfg(tmp_path), world_size=1)
    assert "Datasets checked" in caplog.text


@pytest.mark.parametrize("split, sub", [("query", "query"), ("gallery", "bounding_box_test")])
def test_empty_query_or_gallery_fails_before_training_naming_split_and_folder(tmp_path, split, sub):
    base = _market(tmp_path, **{split: ()})
    with pytest.raises(DatasetCheckError) as info:
        check_datasets(_cfg(tmp_path), world_size=1)
    message = str(info.value)
    assert "DATASETS.TESTS" in message and "'Market1501'" in message and f"empty {split} split" in message
    assert os.path.join(base, sub) in message
    with pytest.raises(DatasetCheckError, match=f"empty {split} split .*{sub}"):  # and at evaluation time
        build_test_set(_cfg(tmp_path), "Market1501")


def test_empty_train_split_names_the_folder(tmp_path):
    base = _market(tmp_path, train=())
    with pytest.raises(DatasetCheckError, match="DATASETS.NAMES: 'Market1501' has an empty train split") as info:
        check_datasets(_cfg(tmp_path), world_size=1)
    assert os.path.join(base, "bounding_box_train") in str(info.value)
    with pytest.raises(ValueError, match="bounding_box_train"):
        build_reid_train_loader(_cfg(tmp_path))


def test_no_query_with_a_valid_match_fails_and_names_the_ids(tmp_path):
    # query 1 is only in the gallery from its own camera, query 3 not at all
    _market(tmp_path, gallery=("0001_c1s1_000301_00.jpg", "0009_c5s1_000101_00.jpg"))
    with pytest.raises(DatasetCheckError, match=r"no query has a gallery image .*query ids without a match: 1, 3"):
        check_datasets(_cfg(tmp_path), world_size=1)


def test_some_queries_without_a_match_are_a_warning_with_a_count(tmp_path, caplog):
    _market(tmp_path, gallery=("0001_c2s1_000301_00.jpg", "0009_c5s1_000101_00.jpg"))
    with caplog.at_level(logging.WARNING, logger="fastreid"):
        check_datasets(_cfg(tmp_path), world_size=1)
    assert "1 of 2 queries have no gallery image" in caplog.text and "ids: 3" in caplog.text


def test_unknown_dataset_names_the_key_and_the_closest_match(tmp_path):
    _market(tmp_path)
    with pytest.raises(DatasetCheckError, match=r"DATASETS.TESTS: .*'Market1510'.*Did you mean 'Market1501'"):
        check_datasets(_cfg(tmp_path, "DATASETS.TESTS", ("Market1510",)), world_size=1)


def test_all_problems_are_reported_at_once(tmp_path):
    _market(tmp_path, query=())
    cfg = _cfg(tmp_path, "DATASETS.TESTS", ("Market1501",), "SOLVER.IMS_PER_BATCH", 6, "DATALOADER.NUM_INSTANCE", 4)
    with pytest.raises(DatasetCheckError) as info:
        check_datasets(cfg, world_size=1)
    assert "empty query split" in str(info.value) and "SOLVER.IMS_PER_BATCH = 6" in str(info.value)


def test_fewer_identities_than_a_batch_needs(tmp_path):
    _market(tmp_path)  # 2 training identities
    cfg = _cfg(tmp_path, "SOLVER.IMS_PER_BATCH", 8)
    with pytest.raises(DatasetCheckError, match=r"DATASETS.NAMES \(Market1501\).* 2 identities .*needs 4 .*at most 4"):
        check_datasets(cfg, world_size=1)
    with pytest.raises(DatasetCheckError, match="needs 4"):  # per process, 2 processes
        check_datasets(_cfg(tmp_path, "SOLVER.IMS_PER_BATCH", 4, "DATALOADER.NUM_INSTANCE", 1), world_size=4)


def test_batch_size_not_a_multiple_of_num_instance_names_both_keys_and_nearest_values(tmp_path):
    _market(tmp_path)
    cfg = _cfg(tmp_path, "SOLVER.IMS_PER_BATCH", 6, "DATALOADER.NUM_INSTANCE", 4)
    expected = (r"SOLVER.IMS_PER_BATCH = 6 .*DATALOADER.NUM_INSTANCE = 4.*"
                r"use SOLVER.IMS_PER_BATCH 4 or 8, or DATALOADER.NUM_INSTANCE 3 or 6")
    with pytest.raises(DatasetCheckError, match=expected):
        check_datasets(cfg, world_size=1)
    with pytest.raises(ValueError, match=expected):  # the loader says the same
        build_reid_train_loader(cfg)
    # With 2 processes the valid sizes are multiples of 2 x 4.
    with pytest.raises(DatasetCheckError, match=r"// 2 process\(es\) = 6\).*SOLVER.IMS_PER_BATCH 8 or 16"):
        check_datasets(_cfg(tmp_path, "SOLVER.IMS_PER_BATCH", 12, "DATALOADER.NUM_INSTANCE", 4), world_size=2)


def test_the_random_sampler_needs_no_multiple(tmp_path):
    _market(tmp_path)
    check_datasets(_cfg(tmp_path, "SOLVER.IMS_PER_BATCH", 3, "DATALOADER.NUM_INSTANCE", 4,
                        "DATALOADER.PK_SAMPLER", False), world_size=1)


def test_output_dir_under_a_regular_file(tmp_path):
    blocker = tmp_path / "hostname"
    blocker.write_text("not a folder\n")
    parser = default_argument_parser()
    for output_dir in (blocker / "run" / "deeper", blocker):
        cfg = setup_cfg(parser.parse_args(["OUTPUT_DIR", str(output_dir), "MODEL.DEVICE", "cpu"]))
        with pytest.raises(NotADirectoryError, match=f"OUTPUT_DIR '{output_dir}'.*'{blocker}' is a file"):
            default_setup(cfg, parser.parse_args([]))
    assert blocker.read_text() == "not a folder\n"


def test_synthetic_split_agrees_with_its_documentation(tmp_path):
    # Identities come in look-alike families of 4 and the split falls on a family boundary.
    assert [num_train_ids(n) for n in (8, 10, 20, 24, 200)] == [4, 4, 8, 12, 100]
    ds = SyntheticPerson(str(tmp_path), num_ids=20, num_cameras=2, images_per_id=3, height=16, width=8, verbose=False)
    assert len({r[1] for r in ds.train}) == 8 and len({r[1] for r in ds.query + ds.gallery}) == 12
    assert "20 give 8 + 12" in " ".join(synthetic.__doc__.split())
