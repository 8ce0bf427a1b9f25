"""torchreid's video API (``VideoDataManager``, ``VideoSoftmaxEngine``, ``VideoTripletEngine``) on a tiny
SyntheticTracklets set: the seed's two video engine examples, batch layout, sampling, pooling and evaluation."""
import glob
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

import fastreid.torchreid as torchreid
from fastreid.data.datasets import DATASET_REGISTRY, SyntheticTracklets
from fastreid.evaluation import evaluate_rank

KEY = "synthetic_tracklets_tiny"
FRAMES = 6


class TinyTracklets(SyntheticTracklets):
    """16 ids (8 train), 3 cameras, 2 tracklets per camera, 6 frames of 32x16."""

    @classmethod
    def from_config(cls, cfg):
        return dict(num_ids=16, num_cameras=3, tracklets_per_camera=2, frames=FRAMES, height=32, width=16, seed=0)


torchreid.data.register_video_dataset(KEY, TinyTracklets)

SMALL = dict(height=32, width=16, workers=0, use_gpu=False)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("video_data"))


def _datamanager(root, **kwargs):
    args = dict(root=root, sources=KEY, combineall=False, batch_size=4, seq_len=4, **SMALL)
    args.update(kwargs)
    return torchreid.data.VideoDataManager(**args)


def _model(datamanager, loss):
    return torchreid.models.build_model(name="resnet18", num_classes=datamanager.num_train_pids, loss=loss,
                                        pretrained=False)


def test_softmax_video_example(root, tmp_path):
    torch.manual_seed(0)
    # The seed's example; import line, dataset, sizes (and an untrained resnet18) changed.
    datamanager = torchreid.data.VideoDataManager(
        root=root,
        sources=KEY,
        height=32,
        width=16,
        combineall=False,
        batch_size=4,  # number of tracklets
        seq_len=4,  # number of images in each tracklet
        workers=0,
        use_gpu=False,
    )
    model = torchreid.models.build_model(
        name='resnet18',
        num_classes=datamanager.num_train_pids,
        loss='softmax',
        pretrained=False,
    )
    optimizer = torchreid.optim.build_optimizer(
        model, optim='adam', lr=0.0003
    )
    scheduler = torchreid.optim.build_lr_scheduler(
        optimizer,
        lr_scheduler='single_step',
        stepsize=20
    )
    engine = torchreid.engine.VideoSoftmaxEngine(
        datamanager, model, optimizer, scheduler=scheduler,
        pooling_method='avg'
    )
    save_dir = str(tmp_path / "resnet18-softmax-tiny")
    rank1 = engine.run(
        max_epoch=1,
        save_dir=save_dir,
        print_freq=10
    )
    assert 0.0 <= rank1 <= 1.0
    assert glob.glob(osp.join(save_dir, "model", "model.pth.tar-1"))
    with open(osp.join(save_dir, "log.txt")) as f:
        assert "mAP" in f.read()


def test_triplet_video_example(root, tmp_path):
    torch.manual_seed(0)
    # The seed's example (its missing comma after train_sampler added); import, dataset and sizes changed.
    datamanager = torchreid.data.VideoDataManager(
        root=root,
        sources=KEY,
        height=32,
        width=16,
        combineall=False,
        num_instances=2,
        train_sampler='RandomIdentitySampler',
        batch_size=4,  # number of tracklets
        seq_len=4,  # number of images in each tracklet
        workers=0,
        use_gpu=False,
    )
    model = torchreid.models.build_model(
        name='resnet18',
        num_classes=datamanager.num_train_pids,
        loss='triplet',
        pretrained=False,
    )
    optimizer = torchreid.optim.build_optimizer(
        model, optim='adam', lr=0.0003
    )
    scheduler = torchreid.optim.build_lr_scheduler(
        optimizer,
        lr_scheduler='single_step',
        stepsize=20
    )
    engine = torchreid.engine.VideoTripletEngine(
        datamanager, model, optimizer, margin=0.3,
        weight_t=0.7, weight_x=1, scheduler=scheduler,
        pooling_method='max'
    )
    save_dir = str(tmp_path / "resnet18-triplet-tiny")
    rank1 = engine.run(
        max_epoch=1,
        save_dir=save_dir,
        print_freq=10
    )
    assert 0.0 <= rank1 <= 1.0
    assert glob.glob(osp.join(save_dir, "model", "model.pth.tar-1"))


def test_batches_are_normalised_tracklets_counted_in_tracklets(root):
    dm = _datamanager(root, norm_mean=[0.5, 0.5, 0.5], norm_std=[0.25, 0.25, 0.25])
    assert dm.data_type == "video" and dm.cfg.DATASETS.NAMES == ("TinyTracklets",)
    assert dm.cfg.INPUT.SEQ_LEN == 4 and dm.cfg.SOLVER.IMS_PER_BATCH == 4
    assert dm.num_train_pids == 8
    train_tracklets = len(dm.train_loader.dataset)
    assert len(dm.train_loader) == train_tracklets // 4
    batch = next(iter(dm.train_loader))
    assert batch["img"].shape == (4, 4, 3, 32, 16)
    assert batch["pid"].shape == batch["camid"].shape == batch["dsetid"].shape == (4,)
    assert all(isinstance(p, tuple) and len(p) == FRAMES for p in batch["impath"])
    assert -2.0 - 1e-6 <= batch["img"].min() and batch["img"].max() <= 2.0 + 1e-6  # (x/255 - .5) / .25

    query, gallery = dm.return_query_and_gallery_by_name(KEY)
    q_loader, g_loader = dm.fetch_test_loaders(KEY)
    q_batches = list(q_loader)
    assert sum(len(b["pid"]) for b in q_batches) == len(query)
    assert q_batches[0]["img"].shape[1:] == (4, 3, 32, 16)
    assert [tuple(r[0]) for r in gallery[:2]] == list(next(iter(g_loader))["impath"][:2])


def test_all_sampling_gives_whole_tracklets_one_per_test_batch(root):
    dm = _datamanager(root, sample_method="all", batch_size_test=8)
    assert dm.cfg.INPUT.SAMPLE_METHOD_TRAIN == "evenly" and dm.cfg.INPUT.SAMPLE_METHOD_TEST == "all"
    batch = next(iter(dm.fetch_test_loaders(KEY)[0]))
    assert batch["img"].shape == (1, FRAMES, 3, 32, 16)
    assert next(iter(dm.train_loader))["img"].shape[1] == 4


def _features_of(engine, loader):
    engine.model.eval()
    with torch.no_grad():
        return torch.cat([engine.extract_features(b["img"]) for b in loader])


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_pooled_features_follow_torchreid_and_chunking_changes_nothing(root, pooling):
    torch.manual_seed(0)
    dm = _datamanager(root, sample_method="all", frame_chunk=4)
    model = _model(dm, "softmax")
    engine = torchreid.engine.VideoSoftmaxEngine(dm, model, torchreid.optim.build_optimizer(model),
                                                 pooling_method=pooling)
    loader = dm.fetch_test_loaders(KEY)[0]
    chunked = _features_of(engine, loader)
    dm.frame_chunk = 0
    whole = _features_of(engine, loader)
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-5)
    frames = next(iter(loader))["img"][0]
    with torch.no_grad():
        per_frame = model(frames)
    expected = per_frame.mean(0) if pooling == "avg" else per_frame.max(0).values
    torch.testing.assert_close(whole[0], expected, rtol=1e-5, atol=1e-5)


def test_frames_train_with_their_tracklet_identity(root):
    dm = _datamanager(root)
    model = _model(dm, "softmax")
    engine = torchreid.engine.VideoSoftmaxEngine(dm, model, torchreid.optim.build_optimizer(model))
    data = next(iter(dm.train_loader))
    frames, pids = engine.parse_data_for_train(data)
    assert frames.shape == (16, 3, 32, 16)
    assert pids.tolist() == [p for p in data["pid"].tolist() for _ in range(4)]


def test_engine_test_equals_brute_force_on_pooled_features(root):
    torch.manual_seed(0)
    dm = _datamanager(root)
    model = _model(dm, "softmax")
    engine = torchreid.engine.VideoSoftmaxEngine(dm, model, torchreid.optim.build_optimizer(model))
    rank1 = engine.run(test_only=True, save_dir="", normalize_feature=True)
    parts = {}
    for split, loader in zip(("query", "gallery"), dm.fetch_test_loaders(KEY)):
        batches = list(loader)
        parts[split] = (F.normalize(_features_of(engine, batches), dim=1),
                        torch.cat([b["pid"] for b in batches]).numpy(), torch.cat([b["camid"] for b in batches]).numpy())
    (qf, qp, qc), (gf, gp, gc) = parts["query"], parts["gallery"]
    dist = ((qf[:, None] - gf[None]) ** 2).sum(-1).numpy()
    cmc, _, _ = evaluate_rank(dist, qp, gp, qc, gc, use_cython=False)
    assert rank1 == pytest.approx(float(cmc[0]), abs=1e-9)


def test_torchreid_keys_and_errors():
    assert torchreid.data.resolve_video_dataset("mars") == "MARS"
    assert torchreid.data.resolve_video_dataset("dukemtmcvidreid") == "DukeMTMCVidReID"
    assert {"mars", "ilidsvid", "prid2011", "dukemtmcvidreid", KEY} <= set(torchreid.data.video_dataset_keys())
    assert DATASET_REGISTRY.get("prid2011") is DATASET_REGISTRY.get("PRID2011")
    with pytest.raises(KeyError, match="register_video_dataset"):
        torchreid.data.resolve_video_dataset("marss")
    with pytest.raises(TypeError, match="ImageDataManager"):
        torchreid.data.resolve_video_dataset("Market1501")
    with pytest.raises(ValueError, match="sample_method"):
        torchreid.data.VideoDataManager(sources=KEY, sample_method="middle")
    with pytest.raises(ValueError, match="pooling_method"):
        torchreid.engine.VideoSoftmaxEngine.set_pooling_method(object.__new__(torchreid.engine.VideoSoftmaxEngine),
                                                               "median")


def test_register_video_dataset_checks_its_input():
    with pytest.raises(TypeError, match="VideoDataset"):
        torchreid.data.register_video_dataset("not_video", torchreid.data.ImageDataset)
    torchreid.data.register_video_dataset(KEY, TinyTracklets)  # again: a no-op
    with pytest.raises(ValueError, match="already exists"):
        torchreid.data.register_video_dataset("mars", TinyTracklets)


def test_a_user_video_dataset_subclass(root, tmp_path):
    base = TinyTracklets(root=root, verbose=False, **TinyTracklets.from_config(None))

    class MyVideo(torchreid.data.VideoDataset):
        def __init__(self, root="", **kwargs):
            super().__init__(base.train, base.query, base.gallery, **kwargs)

    torchreid.data.register_video_dataset("my_video", MyVideo)
    dm = _datamanager(root, sources="my_video", seq_len=2)
    assert dm.num_train_pids == MyVideo(verbose=False).num_train_pids == 8
    assert next(iter(dm.train_loader))["img"].shape == (4, 2, 3, 32, 16)


def test_visrank_draws_tracklets(root, tmp_path):
    dm = _datamanager(root)
    model = _model(dm, "softmax")
    engine = torchreid.engine.VideoSoftmaxEngine(dm, model, torchreid.optim.build_optimizer(model))
    engine.run(test_only=True, save_dir=str(tmp_path), visrank=True, visrank_topk=3)
    assert glob.glob(osp.join(str(tmp_path), f"visrank_{KEY}", "*.png"))
