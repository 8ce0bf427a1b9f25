import itertools

import pytest
import torch

from fastreid.data import (BadImageError, CommDataset, build_reid_test_loader, build_reid_train_loader,
                           read_image)
from fastreid.data.transforms import ToTensor255

from .conftest import write_images


def test_train_loader_batches_from_config(tiny_synthetic_cfg):
    loader = build_reid_train_loader(tiny_synthetic_cfg)
    assert loader.dataset.num_classes == 4
    batches = list(itertools.islice(iter(loader), 6))
    b = batches[0]
    assert b["images"].shape == (4, 3, 32, 16) and b["images"].dtype == torch.float32
    assert b["images"].max() > 1 and b["images"].max() <= 255
    assert b["targets"].dtype == torch.long and b["camids"].dtype == torch.long and len(b["img_paths"]) == 4
    for batch in batches:  # default PK sampler: 2 ids x 2 images
        assert sorted(torch.bincount(batch["targets"]).tolist())[-2:] == [2, 2]
    assert set(torch.cat([x["targets"] for x in batches]).tolist()) <= set(range(4))


def test_train_loader_resume_and_workers(tiny_synthetic_cfg):
    full = build_reid_train_loader(tiny_synthetic_cfg, seed=5)
    paths = [b["img_paths"] for b in itertools.islice(iter(full), 5)]
    resumed = build_reid_train_loader(tiny_synthetic_cfg, seed=5, start_iter=3)
    assert [b["img_paths"] for b in itertools.islice(iter(resumed), 2)] == paths[3:5]
    tiny_synthetic_cfg.merge_from_list(["DATALOADER.NUM_WORKERS", 1, "DATALOADER.PK_SAMPLER", False])
    loader = build_reid_train_loader(tiny_synthetic_cfg, seed=5)
    assert loader.num_workers == 1 and not loader.persistent_workers and not loader.pin_memory
    assert next(iter(loader))["images"].shape == (4, 3, 32, 16)


def test_train_loader_explicit_arguments(tmp_path):
    paths = write_images(tmp_path, [f"{i}.jpg" for i in range(6)])
    ds = CommDataset([(p, f"X_{i % 3}", "X_0") for i, p in enumerate(paths)], ToTensor255())
    loader = build_reid_train_loader(ds, sampler="TrainingSampler", mini_batch_size=3, seed=0)
    assert next(iter(loader))["images"].shape == (3, 3, 16, 8)


def test_too_few_identities_error_names_keys(tiny_synthetic_cfg):
    tiny_synthetic_cfg.merge_from_list(["SOLVER.IMS_PER_BATCH", 16])
    with pytest.raises(ValueError, match="4 identities .*needs 8"):
        build_reid_train_loader(tiny_synthetic_cfg)


def test_test_loader_query_then_gallery_in_order(tiny_synthetic_cfg):
    loader, num_query = build_reid_test_loader(tiny_synthetic_cfg, dataset_name="SyntheticPerson")
    paths = [p for b in loader for p in b["img_paths"]]
    items = loader.dataset.img_items
    assert paths == [r[0] for r in items] and num_query > 0
    assert all("/query/" in p for p in paths[:num_query]) and all("/bounding_box_test/" in p for p in paths[num_query:])
    targets = torch.cat([b["targets"] for b in loader]).tolist()
    assert targets == [r[1] for r in items] and min(targets) >= 5  # raw ids, not relabelled
    shards = [build_reid_test_loader(loader.dataset, num_query, batch_size=3, rank=r, world_size=2)[0]
              for r in range(2)]
    assert sum(([p for b in s for p in b["img_paths"]] for s in shards), []) == paths


def test_cross_dataset_testing(tiny_synthetic_cfg, tmp_path):
    from .test_datasets import _market_tree

    _market_tree(tmp_path)
    tiny_synthetic_cfg.merge_from_list(["DATASETS.TESTS", ("Market1501",)])
    assert build_reid_train_loader(tiny_synthetic_cfg).dataset.num_classes == 4
    loader, num_query = build_reid_test_loader(tiny_synthetic_cfg, dataset_name=tiny_synthetic_cfg.DATASETS.TESTS[0])
    assert num_query == 2 and len(loader.dataset) == 5


def test_bad_images_fail_or_are_skipped(tmp_path, caplog):
    good = write_images(tmp_path, ["good.jpg"])[0]
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(open(good, "rb").read()[:100])
    with pytest.raises(BadImageError, match="cut.jpg"):
        read_image(str(truncated))
    items = [(str(truncated), 0, 0), (good, 1, 0)]
    with pytest.raises(BadImageError, match="cut.jpg"):
        CommDataset(items, ToTensor255())[0]
    ds = CommDataset(items, ToTensor255(), skip_bad_images=True)
    with caplog.at_level("WARNING"):
        sample = ds[0]
    assert sample["img_paths"] == good and ds.num_skipped == 1 and "cut.jpg" in caplog.text

