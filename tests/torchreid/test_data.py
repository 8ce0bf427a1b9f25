"""torchreid's data API (``fastreid.torchreid.data``): the seeds' ImageDataManager examples on synthetic data."""
import os
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

import fastreid.torchreid as torchreid
from fastreid.data import build_reid_train_loader, build_train_set
from fastreid.data.datasets import DATASET_REGISTRY, SyntheticPerson
from fastreid.data.samplers import sampler_name
from fastreid.torchreid.data import ImageDataset


class TinySynthetic(SyntheticPerson):
    """16 ids (8 train), 3 cameras, 4 images each, 32x16: the synthetic set under the key 'synthetic'."""

    @classmethod
    def from_config(cls, cfg):
        return dict(num_ids=16, num_cameras=3, images_per_id=4, height=32, width=16, seed=0)


class NewDataset(ImageDataset):
    """The how-to's "use your own dataset" template, its three lists read from ``<pid>_<camid>_<n>.png`` files."""

    dataset_dir = "new_dataset"

    def __init__(self, root="", **kwargs):
        self.root = osp.abspath(osp.expanduser(root))
        self.dataset_dir = osp.join(self.root, self.dataset_dir)
        train, query, gallery = (self._read(osp.join(self.dataset_dir, s)) for s in ("train", "query", "gallery"))
        super(NewDataset, self).__init__(train, query, gallery, **kwargs)

    @staticmethod
    def _read(folder):
        names = sorted(os.listdir(folder))
        return [(osp.join(folder, n), int(n.split("_")[0]), int(n.split("_")[1])) for n in names]


# Registration is process-wide, as in torchreid: keys of this module are its own.
torchreid.data.register_image_dataset("synthetic_tiny", TinySynthetic)
torchreid.data.register_image_dataset("own_dataset", NewDataset)


def _write(folder, names):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(len(names))
    for name in names:
        Image.fromarray(rng.integers(0, 255, (32, 16, 3), dtype=np.uint8)).save(osp.join(folder, name))


@pytest.fixture
def root(tmp_path):
    base = tmp_path / "new_dataset"
    _write(base / "train", [f"{p}_{c}_{i}.png" for p in range(5) for c in range(2) for i in range(2)])
    _write(base / "query", [f"{p}_0_0.png" for p in range(3)])
    _write(base / "gallery", [f"{p}_1_{i}.png" for p in range(3) for i in range(2)])
    return str(tmp_path)


def _sampler(cfg):
    return sampler_name(cfg.DATALOADER.SAMPLER_TRAIN, cfg.DATALOADER.PK_SAMPLER, cfg.DATALOADER.NAIVE_WAY)


SMALL = dict(height=32, width=16, workers=0, use_gpu=False)


def test_engine_seed_softmax_example(root):
    datamanager = torchreid.data.ImageDataManager(
        root=root, sources="synthetic_tiny", combineall=False, batch_size=8, **SMALL)
    assert datamanager.num_train_pids == 8 and datamanager.num_train_cams == 3
    assert len(datamanager.train_loader) == 32 // 8
    batches = list(datamanager.train_loader)
    assert len(batches) == 4
    data = batches[0]
    assert set(data) == {"img", "pid", "camid", "dsetid", "impath"}
    assert data["img"].shape == (8, 3, 32, 16) and data["img"].dtype == torch.float32
    assert data["pid"].dtype == torch.long and int(data["pid"].max()) < 8 and data["dsetid"].tolist() == [0] * 8
    assert len(data["impath"]) == 8 and all(osp.isfile(p) for p in data["impath"])
    # img is torchreid's normalised image: the fastreid config keeps the statistics on the 0-255 scale.
    assert -3 < float(data["img"].min()) < 0 < float(data["img"].max()) < 3
    assert datamanager.cfg.MODEL.PIXEL_MEAN == pytest.approx([0.485 * 255, 0.456 * 255, 0.406 * 255])
    assert _sampler(datamanager.cfg) == "TrainingSampler"
    assert datamanager.cfg.INPUT.DO_FLIP and not datamanager.cfg.INPUT.DO_PAD  # default transforms: random_flip
    # The config rebuilds the same sets through fastreid's own path (what fastreid's trainer and evaluator use).
    assert build_train_set(datamanager.cfg).num_classes == datamanager.num_train_pids
    eval_loader, num_query = datamanager.evaluation_loader("synthetic_tiny")
    assert set(next(iter(eval_loader))) == {"images", "targets", "camids", "img_paths"}
    query_loader, gallery_loader = datamanager.fetch_test_loaders("synthetic_tiny")
    assert datamanager.test_loader["synthetic_tiny"]["query"] is query_loader
    query, gallery = datamanager.return_query_and_gallery_by_name("synthetic_tiny")
    assert sum(len(b["impath"]) for b in query_loader) == len(query) == num_query > 0
    assert len(eval_loader.dataset) == len(query) + len(gallery)
    gallery_batch = next(iter(gallery_loader))
    assert gallery_batch["img"].shape[1:] == (3, 32, 16)
    assert gallery_batch["impath"] == [r[0] for r in gallery[: len(gallery_batch["impath"])]]
    assert gallery_batch["pid"].tolist() == [r[1] for r in gallery[: len(gallery_batch["impath"])]]


def test_triplet_example_gives_pk_batches(root):
    datamanager = torchreid.data.ImageDataManager(
        root=root, sources="synthetic_tiny", combineall=False, batch_size=8, num_instances=4,
        train_sampler="RandomIdentitySampler", **SMALL)
    assert _sampler(datamanager.cfg) == "NaiveIdentitySampler"
    for data in datamanager.train_loader:
        counts = torch.bincount(data["pid"])
        assert sorted(counts[counts > 0].tolist()) == [4, 4]


def test_readme_example_transforms_and_batch_sizes(root):
    datamanager = torchreid.data.ImageDataManager(
        root=root, sources="synthetic_tiny", targets="synthetic_tiny", batch_size_train=8, batch_size_test=10,
        transforms=["random_flip", "random_crop"], **SMALL)
    cfg = datamanager.cfg
    assert cfg.INPUT.DO_FLIP and cfg.INPUT.DO_PAD and not cfg.INPUT.REA.ENABLED and not cfg.INPUT.CJ.ENABLED
    assert cfg.SOLVER.IMS_PER_BATCH == 8 and cfg.TEST.IMS_PER_BATCH == 10
    assert len(next(iter(datamanager.test_loader["synthetic_tiny"]["gallery"]))["impath"]) == 10
    assert next(iter(datamanager.train_loader))["img"].shape == (8, 3, 32, 16)
    every = torchreid.data.ImageDataManager(
        root=root, sources="synthetic_tiny", transforms=list(torchreid.data.TORCHREID_TRANSFORMS), batch_size=8,
        **SMALL)
    assert every.cfg.INPUT.RPT.ENABLED and every.cfg.INPUT.REA.ENABLED and every.cfg.INPUT.CJ.ENABLED
    assert next(iter(every.train_loader))["img"].shape == (8, 3, 32, 16)
    with pytest.raises(ValueError, match="random_flip"):
        torchreid.data.ImageDataManager(root=root, sources="synthetic_tiny", transforms="random_flop", **SMALL)


def test_howto_custom_dataset_combine_and_cross_dataset(root):
    own = torchreid.data.ImageDataManager(root=root, sources="own_dataset", batch_size_train=4, **SMALL)
    assert own.num_train_pids == 5 and own.num_train_cams == 2
    assert DATASET_REGISTRY.get("own_dataset") is NewDataset  # fastreid configs can name it too
    combined = torchreid.data.ImageDataManager(
        root=root, sources=["own_dataset", "synthetic_tiny"], batch_size_train=8, **SMALL)
    assert combined.num_train_pids == 5 + 8 and combined.num_train_cams == 2 + 3
    seen = set()
    for data in combined.train_loader:
        for path, dsetid in zip(data["impath"], data["dsetid"].tolist()):
            assert dsetid == (0 if "new_dataset" in path else 1)
            seen.add(dsetid)
    assert seen == {0, 1}
    cross = torchreid.data.ImageDataManager(
        root=root, sources=["own_dataset", "synthetic_tiny"], targets="own_dataset", batch_size_train=8, **SMALL)
    assert list(cross.test_loader) == ["own_dataset"]
    query, gallery = cross.return_query_and_gallery_by_name("own_dataset")
    assert (len(query), len(gallery)) == (3, 6)
    with pytest.raises(KeyError, match="targets: own_dataset"):
        cross.fetch_test_loaders("synthetic_tiny")


def test_combineall_adds_test_identities(root):
    plain = torchreid.data.ImageDataManager(root=root, sources="own_dataset", batch_size_train=4, **SMALL)
    combined = torchreid.data.ImageDataManager(
        root=root, sources="own_dataset", batch_size_train=4, combineall=True, **SMALL)
    assert combined.cfg.DATASETS.COMBINEALL
    assert combined.num_train_pids == plain.num_train_pids + 3
    assert len(combined.train_loader.dataset) == len(plain.train_loader.dataset) + 3 + 6


def test_dataset_options_map_to_fastreid_keys(root):
    dm = torchreid.data.ImageDataManager(
        root=root, sources="own_dataset", split_id=2, cuhk03_labeled=True, cuhk03_classic_split=True,
        market1501_500k=True, norm_mean=[0.5, 0.5, 0.5], norm_std=[0.25, 0.25, 0.25], batch_size_train=4, **SMALL)
    cfg = dm.cfg
    assert cfg.DATASETS.SPLIT_ID == 2 and cfg.DATASETS.CUHK03.SPLIT_ID == 2
    assert cfg.DATASETS.CUHK03.LABELED and cfg.DATASETS.CUHK03.CLASSIC_SPLIT and cfg.DATASETS.MARKET1501.WITH_500K
    assert cfg.MODEL.PIXEL_STD == pytest.approx([63.75] * 3)
    img = Image.new("RGB", (50, 70), (255, 128, 0))
    tensor = dm.preprocess_pil_img(img)
    assert tensor.shape == (3, 32, 16)
    assert tensor[:, 0, 0].tolist() == pytest.approx([2.0, (128 / 255 - 0.5) / 0.25, -2.0], abs=1e-5)


def test_unknown_names_fail_listing_known(root):
    with pytest.raises(KeyError, match="market1501"):
        torchreid.data.ImageDataManager(root=root, sources="market1502", **SMALL)
    with pytest.raises(KeyError, match="RandomSampler"):
        torchreid.data.ImageDataManager(root=root, sources="synthetic_tiny", train_sampler="Shuffled", **SMALL)
    with pytest.raises(ValueError, match="already exists"):
        torchreid.data.register_image_dataset("market1501", NewDataset)
    assert torchreid.data.resolve_image_dataset("dukemtmcreid") == "DukeMTMC"
    keys = set(torchreid.data.image_dataset_keys())
    assert {"market1501", "grid", "prid", "university1652", "synthetic_tiny"} <= keys


def test_sequential_k_tfm_and_train_targets(root):
    dm = torchreid.data.ImageDataManager(
        root=root, sources="own_dataset", targets="synthetic_tiny", load_train_targets=True, k_tfm=2,
        train_sampler="SequentialSampler", batch_size_train=4, **SMALL)
    data = next(iter(dm.train_loader))
    assert isinstance(data["img"], list) and len(data["img"]) == 2 and data["img"][0].shape == (4, 3, 32, 16)
    assert data["impath"] == [r[0] for r in dm.train_loader.dataset.img_items[:4]]  # in order
    assert dm.train_loader_t is not None and dm.train_loader_t.dataset.num_classes == 8
    assert dm.num_train_pids == 5
    with pytest.raises(ValueError, match="disjoint"):
        torchreid.data.ImageDataManager(root=root, sources="synthetic_tiny", load_train_targets=True, **SMALL)


def test_train_loader_resumes_at_saved_position(root):
    def make():
        return torchreid.data.ImageDataManager(root=root, sources="synthetic_tiny", batch_size=8,
                                               transforms=["random_flip", "random_erase"], **SMALL)

    first = make()
    list(first.train_loader)  # one epoch
    state = first.train_loader.state_dict()
    assert state["start"] == 4 * 8
    expected = next(iter(first.train_loader))
    second = make()
    second.train_loader.load_state_dict(state)
    got = next(iter(second.train_loader))
    assert got["impath"] == expected["impath"] and torch.equal(got["img"], expected["img"])
    # The wrapped loader is fastreid's own, as fastreid's trainer consumes it.
    assert isinstance(first.train_loader.loader, type(build_reid_train_loader(first.cfg)))


def test_register_twice_and_same_class_names(root):
    torchreid.data.register_image_dataset("own_dataset", NewDataset)  # the same class again: nothing to do

    class Other(ImageDataset):
        pass

    with pytest.raises(ValueError, match="already exists"):
        torchreid.data.register_image_dataset("own_dataset", Other)
    with pytest.raises(TypeError):
        torchreid.data.register_image_dataset("not_a_dataset", object)

    # Another script's template class of the same name: registered under its key, both usable.
    class NewDataset2(NewDataset):
        pass

    NewDataset2.__name__ = "NewDataset"
    torchreid.data.register_image_dataset("own_dataset_copy", NewDataset2)
    assert torchreid.data.resolve_image_dataset("own_dataset_copy") == "own_dataset_copy"
    torchreid.data.register_image_dataset("own_dataset_copy", NewDataset2)
    dm = torchreid.data.ImageDataManager(root=root, sources="own_dataset_copy", batch_size_train=4, **SMALL)
    assert dm.num_train_pids == 5


def test_domain_and_dataset_samplers(root):
    dm = torchreid.data.ImageDataManager(root=root, sources="synthetic_tiny", batch_size=8, num_cams=2,
                                         train_sampler="RandomDomainSampler", **SMALL)
    assert (dm.cfg.DATALOADER.SAMPLER_TRAIN, dm.cfg.DATALOADER.NUM_INSTANCE) == ("CameraGroupSampler", 4)
    for _ in range(2):  # two epochs
        for data in dm.train_loader:
            counts = torch.bincount(data["camid"])
            assert sorted(counts[counts > 0].tolist()) == [4, 4]
    dm = torchreid.data.ImageDataManager(root=root, sources=["own_dataset", "synthetic_tiny"], batch_size=8,
                                         num_datasets=2, train_sampler="RandomDatasetSampler", **SMALL)
    for data in dm.train_loader:
        assert sorted(data["dsetid"].tolist()) == [0] * 4 + [1] * 4
    with pytest.raises(ValueError, match="divisible by num_cams"):
        torchreid.data.ImageDataManager(root=root, sources="synthetic_tiny", batch_size=8, num_cams=3,
                                        train_sampler="RandomDomainSampler", **SMALL)
    with pytest.raises(ValueError, match="needs 4 cameras"):
        torchreid.data.ImageDataManager(root=root, sources="synthetic_tiny", batch_size=8, num_cams=4,
                                        train_sampler="RandomDomainSampler", **SMALL)
