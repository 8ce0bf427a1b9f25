"""torchreid's engine (``fastreid.torchreid.engine``): the seeds' engine examples on a tiny synthetic set.

Each test runs an example of torchreid_engine_api.txt / torchreid_howto.txt / torchreid_readme.txt with the
import line changed (``import fastreid.torchreid as torchreid``), the synthetic set under a torchreid-style key
and small sizes, and checks what the example promises.
"""
import glob
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import fastreid.torchreid as torchreid
from fastreid.data.datasets import SyntheticPerson
from fastreid.evaluation import compute_distance_matrix, evaluate_rank

KEY = "synthetic_engine"


class TinySynthetic(SyntheticPerson):
    """16 ids (8 train), 3 cameras, 4 images each, 32x16."""

    @classmethod
    def from_config(cls, cfg):
        return dict(num_ids=16, num_cameras=3, images_per_id=4, height=32, width=16, seed=0)


torchreid.data.register_image_dataset(KEY, TinySynthetic)

SMALL = dict(height=32, width=16, workers=0, use_gpu=False)


@pytest.fixture
def root(tmp_path):
    return str(tmp_path / "data")


def _datamanager(root, **kwargs):
    args = dict(root=root, sources=KEY, combineall=False, batch_size=8, **SMALL)
    args.update(kwargs)
    return torchreid.data.ImageDataManager(**args)


def _softmax_engine(root, lr=0.0003, optim="adam", **dm_args):
    torch.manual_seed(0)
    datamanager = _datamanager(root, **dm_args)
    model = torchreid.models.build_model(name="resnet18", num_classes=datamanager.num_train_pids, loss="softmax",
                                         pretrained=False)
    optimizer = torchreid.optim.build_optimizer(model, optim=optim, lr=lr)
    scheduler = torchreid.optim.build_lr_scheduler(optimizer, lr_scheduler="single_step", stepsize=20)
    engine = torchreid.engine.ImageSoftmaxEngine(datamanager, model, optimizer, scheduler=scheduler)
    return engine, model, optimizer, scheduler


def _checkpoints(save_dir):
    return sorted(osp.basename(p) for p in glob.glob(osp.join(save_dir, "model", "model.pth.tar-*")))


def _metrics(save_dir):
    with open(osp.join(save_dir, "metrics.json")) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_softmax_example_trains_saves_and_logs_where_torchreid_users_look(root, tmp_path):
    engine, model, _, _ = _softmax_engine(root)
    save_dir = str(tmp_path / "log" / "resnet18-softmax")
    rank1 = engine.run(max_epoch=2, save_dir=save_dir, print_freq=10)

    assert 0.0 <= rank1 <= 1.0
    assert _checkpoints(save_dir) == ["model.pth.tar-2"]  # eval_freq=-1: only after the last epoch
    checkpoint = torch.load(osp.join(save_dir, "model", "model.pth.tar-2"), map_location="cpu", weights_only=True)
    assert {"state_dict", "epoch", "rank1", "optimizer", "scheduler"} <= set(checkpoint)
    assert checkpoint["epoch"] == 2 and checkpoint["rank1"] == pytest.approx(rank1)
    assert checkpoint["state_dict"].keys() == model.state_dict().keys()
    assert glob.glob(osp.join(save_dir, "*tfevents*")), "tensorboard events in save_dir"
    with open(osp.join(save_dir, "log.txt")) as f:
        log = f.read()
    assert "Rank-1" in log and "mAP" in log
    rows = _metrics(save_dir)
    assert any("loss_x" in r and "acc" in r and "lr" in r for r in rows)
    assert any(f"Test/{KEY}/rank1" in r for r in rows)


def test_test_matches_a_brute_force_evaluation_on_torchreid_batches(root):
    engine, model, _, _ = _softmax_engine(root)
    rank1 = engine.run(test_only=True, save_dir="", dist_metric="euclidean", normalize_feature=True)
    model.eval()
    with torch.no_grad():
        loaders = engine.datamanager.test_loader[KEY]
        parts = {}
        for split in ("query", "gallery"):
            batches = list(loaders[split])
            parts[split] = (torch.cat([F.normalize(model(b["img"]), dim=1) for b in batches]),
                            torch.cat([b["pid"] for b in batches]).numpy(),
                            torch.cat([b["camid"] for b in batches]).numpy())
    (qf, qp, qc), (gf, gp, gc) = parts["query"], parts["gallery"]
    diff = qf[:, None, :] - gf[None, :, :]
    dist = (diff ** 2).sum(-1).numpy()
    cmc, _, _ = evaluate_rank(dist, qp, gp, qc, gc, use_cython=False)
    assert rank1 == pytest.approx(float(cmc[0]), abs=1e-9)


def test_triplet_example_with_identity_sampler(root, tmp_path):
    torch.manual_seed(0)
    datamanager = _datamanager(root, num_instances=4, train_sampler="RandomIdentitySampler")
    model = torchreid.models.build_model(name="resnet18", num_classes=datamanager.num_train_pids, loss="triplet",
                                         pretrained=False)
    optimizer = torchreid.optim.build_optimizer(model, optim="adam", lr=0.0003)
    scheduler = torchreid.optim.build_lr_scheduler(optimizer, lr_scheduler="single_step", stepsize=20)
    engine = torchreid.engine.ImageTripletEngine(datamanager, model, optimizer, margin=0.3, weight_t=0.7,
                                                 weight_x=1, scheduler=scheduler)
    save_dir = str(tmp_path / "triplet")
    engine.run(max_epoch=1, save_dir=save_dir, print_freq=10)
    assert _checkpoints(save_dir) == ["model.pth.tar-1"]
    assert any("loss_t" in r and "loss_x" in r for r in _metrics(save_dir))


def test_triplet_engine_losses_follow_torchreid_formulas(root):
    torch.manual_seed(0)
    datamanager = _datamanager(root, num_instances=4, train_sampler="RandomIdentitySampler")
    model = torchreid.models.build_model("resnet18", datamanager.num_train_pids, loss="triplet", pretrained=False)
    optimizer = torchreid.optim.build_optimizer(model, optim="adam", lr=0.0003)
    engine = torchreid.engine.ImageTripletEngine(datamanager, model, optimizer, margin=0.3, weight_t=0.7,
                                                 weight_x=1.5)
    data = next(iter(datamanager.train_loader))
    model.train()
    torch.manual_seed(1)
    losses = engine.compute_losses(data)
    torch.manual_seed(1)
    logits, feats = model(data["img"])
    pids = data["pid"]
    k, eps = logits.shape[1], 0.1
    # torchreid: targets (1 - eps) * one-hot + eps / K, loss = (-targets * log_softmax).mean(0).sum()
    targets = (1 - eps) * F.one_hot(pids, k).float() + eps / k
    ce = (-targets * F.log_softmax(logits, dim=1)).mean(0).sum()
    dist = torch.cdist(feats, feats).pow(2).clamp(min=1e-12).sqrt()
    same = pids[:, None] == pids[None, :]
    d_ap = torch.stack([dist[i][same[i]].max() for i in range(len(pids))])
    d_an = torch.stack([dist[i][~same[i]].min() for i in range(len(pids))])
    triplet = torch.clamp(d_ap - d_an + 0.3, min=0).mean()
    assert losses["loss_x"].item() == pytest.approx(1.5 * ce.item(), rel=1e-5)
    assert losses["loss_t"].item() == pytest.approx(0.7 * triplet.item(), rel=1e-4, abs=1e-6)


def test_softmax_label_smoothing_off_is_plain_cross_entropy():
    logits, targets = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 0])
    plain = torchreid.engine.CrossEntropyLoss(5, label_smooth=False)(logits, targets)
    assert plain.item() == pytest.approx(F.cross_entropy(logits, targets).item(), rel=1e-6)


def _backbone_and_classifier(state_dict):
    backbone = {k: v for k, v in state_dict.items() if k.startswith("backbone.")}
    classifier = {k: v for k, v in state_dict.items() if "classifier" in k}
    return backbone, classifier


def test_fixbase_trains_only_open_layers_then_everything(root, tmp_path):
    engine, model, _, _ = _softmax_engine(root, lr=0.01)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    save_dir = str(tmp_path / "fixbase")
    engine.run(save_dir=save_dir, max_epoch=2, eval_freq=1, print_freq=10, test_only=False, fixbase_epoch=1,
               open_layers="classifier")
    load = lambda n: torch.load(osp.join(save_dir, "model", f"model.pth.tar-{n}"), weights_only=True)["state_dict"]
    epoch1, epoch2 = load(1), load(2)
    base0, cls0 = _backbone_and_classifier(initial)
    base1, cls1 = _backbone_and_classifier(epoch1)
    base2, _ = _backbone_and_classifier(epoch2)
    assert all(torch.equal(base0[k], base1[k]) for k in base0), "the base stays frozen during fixbase_epoch"
    assert any(not torch.equal(cls0[k], cls1[k]) for k in cls0), "the open layer trains"
    assert any(not torch.equal(base1[k], base2[k]) for k in base1 if k.endswith("weight")), "then all layers train"


def test_unknown_open_layer_is_named(root, tmp_path):
    engine, _, _, _ = _softmax_engine(root)
    with pytest.raises((KeyError, ValueError), match="classifer"):
        engine.run(save_dir=str(tmp_path / "x"), max_epoch=1, fixbase_epoch=1, open_layers="classifer")


def test_staged_lr_gives_two_learning_rates_through_training(root, tmp_path):
    datamanager = _datamanager(root)
    model = torchreid.models.build_model("resnet18", datamanager.num_train_pids, pretrained=False)
    optimizer = torchreid.optim.build_optimizer(model, optim="sgd", lr=0.01, staged_lr=True,
                                                new_layers="classifier", base_lr_mult=0.1)
    assert sorted(g["lr"] for g in optimizer.param_groups) == pytest.approx([0.001, 0.01])
    classifier_ids = {id(p) for p in model.classifier.parameters()}
    for group in optimizer.param_groups:
        is_new = {id(p) in classifier_ids for p in group["params"]}
        assert is_new == {group["lr"] == pytest.approx(0.01)}
    engine = torchreid.engine.ImageSoftmaxEngine(datamanager, model, optimizer)
    engine.run(save_dir=str(tmp_path / "staged"), max_epoch=1)
    assert sorted(g["lr"] for g in optimizer.param_groups) == pytest.approx([0.001, 0.01])


def test_start_eval_and_eval_freq_evaluate_when_they_say(root, tmp_path, monkeypatch):
    engine, _, _, _ = _softmax_engine(root)
    tested_after = []
    real_test = engine.test

    def counting_test(**kwargs):
        tested_after.append(engine.epoch + 1)
        return real_test(**kwargs)

    monkeypatch.setattr(engine, "test", counting_test)
    save_dir = str(tmp_path / "evals")
    engine.run(save_dir=save_dir, max_epoch=5, start_eval=3, eval_freq=2)
    assert tested_after == [4, 5]
    assert _checkpoints(save_dir) == ["model.pth.tar-4", "model.pth.tar-5"]


def test_visrank_writes_rank_lists_in_test_only_mode(root, tmp_path):
    engine, _, _, _ = _softmax_engine(root)
    save_dir = str(tmp_path / "vis")
    with pytest.raises(ValueError, match="test_only"):
        engine.run(save_dir=save_dir, max_epoch=1, visrank=True)
    engine.run(save_dir=save_dir, test_only=True, visrank=True, visrank_topk=3, rerank=True)
    num_query = len(engine.datamanager.return_query_and_gallery_by_name(KEY)[0])
    images = glob.glob(osp.join(save_dir, f"visrank_{KEY}", "*.png"))
    assert len(images) == num_query
    assert _checkpoints(save_dir) == []


def test_test_only_evaluates_without_training(root, tmp_path):
    engine, model, optimizer, _ = _softmax_engine(root)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    save_dir = str(tmp_path / "test_only")
    rank1 = engine.run(save_dir=save_dir, max_epoch=3, test_only=True)
    assert 0.0 <= rank1 <= 1.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not optimizer.state and _checkpoints(save_dir) == []


def test_resume_continues_at_the_saved_epoch_with_the_saved_optimizer_state(root, tmp_path):
    save_dir = str(tmp_path / "resnet18")
    engine, model, _, _ = _softmax_engine(root)
    engine.run(save_dir=save_dir, max_epoch=3, eval_freq=1)
    uninterrupted = torch.load(osp.join(save_dir, "model", "model.pth.tar-3"), weights_only=True)

    engine, model, optimizer, scheduler = _softmax_engine(root)
    start_epoch = torchreid.utils.resume_from_checkpoint(osp.join(save_dir, "model", "model.pth.tar-2"), model,
                                                         optimizer, scheduler)
    assert start_epoch == 2
    saved = torch.load(osp.join(save_dir, "model", "model.pth.tar-2"), weights_only=True)["optimizer"]
    restored = optimizer.state_dict()
    assert restored["state"].keys() == saved["state"].keys()
    assert all(torch.equal(restored["state"][i]["exp_avg"], saved["state"][i]["exp_avg"]) for i in saved["state"])

    engine.run(save_dir=save_dir, max_epoch=3, start_epoch=start_epoch, eval_freq=1)
    resumed = torch.load(osp.join(save_dir, "model", "model.pth.tar-3"), weights_only=True)
    assert resumed["epoch"] == 3
    for key, value in uninterrupted["state_dict"].items():
        assert torch.equal(resumed["state_dict"][key], value), key


def test_own_engine_with_forward_backward_as_the_howto_describes(root, tmp_path):
    datamanager = _datamanager(root)
    model = torchreid.models.build_model("resnet18", datamanager.num_train_pids, pretrained=False)
    optimizer = torchreid.optim.build_optimizer(model, optim="adam", lr=0.0003)

    class MyEngine(torchreid.engine.Engine):
        def __init__(self, datamanager, model, optimizer):
            super().__init__(datamanager, use_gpu=False)
            self.register_model("model", model, optimizer)
            self.steps = 0

        def forward_backward(self, data):
            imgs, pids = self.parse_data_for_train(data)
            loss = F.cross_entropy(self.model(imgs), pids)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.steps += 1
            return {"loss": loss.item()}

    engine = MyEngine(datamanager, model, optimizer)
    save_dir = str(tmp_path / "own")
    engine.run(save_dir=save_dir, max_epoch=1, print_freq=1)
    assert engine.steps == len(datamanager.train_loader)
    assert any("loss" in r for r in _metrics(save_dir))
    assert _checkpoints(save_dir) == ["model.pth.tar-1"]


def test_engine_without_losses_says_what_to_implement(root, tmp_path):
    datamanager = _datamanager(root)
    model = torchreid.models.build_model("resnet18", datamanager.num_train_pids, pretrained=False)
    engine = torchreid.engine.Engine(datamanager, use_gpu=False)
    engine.register_model("model", model, torchreid.optim.build_optimizer(model, optim="adam"))
    with pytest.raises(NotImplementedError, match="compute_losses"):
        engine.run(save_dir=str(tmp_path / "none"), max_epoch=1)


def test_bfloat16_mixed_precision_trains(root, tmp_path):
    datamanager = _datamanager(root)
    model = torchreid.models.build_model("resnet18", datamanager.num_train_pids, pretrained=False)
    optimizer = torchreid.optim.build_optimizer(model, optim="adam", lr=0.0003)
    engine = torchreid.engine.ImageSoftmaxEngine(datamanager, model, optimizer, amp=True)
    save_dir = str(tmp_path / "amp")
    engine.run(save_dir=save_dir, max_epoch=1)
    losses = [r["loss_x"] for r in _metrics(save_dir) if "loss_x" in r]
    assert losses and np.isfinite(losses).all()


def test_readme_example_and_retest_from_saved_weights(root, tmp_path):
    """README steps 2-5, then the how-to's "Test a trained model" on the saved file."""
    datamanager = torchreid.data.ImageDataManager(
        root=root, sources=KEY, targets=KEY, batch_size_train=8, batch_size_test=100,
        transforms=["random_flip", "random_crop"], **SMALL)
    model = torchreid.models.build_model(name="resnet18", num_classes=datamanager.num_train_pids, loss="softmax",
                                         pretrained=False)
    optimizer = torchreid.optim.build_optimizer(model, optim="adam", lr=0.0003)
    scheduler = torchreid.optim.build_lr_scheduler(optimizer, lr_scheduler="single_step", stepsize=20)
    engine = torchreid.engine.ImageSoftmaxEngine(datamanager, model, optimizer=optimizer, scheduler=scheduler,
                                                 label_smooth=True)
    save_dir = str(tmp_path / "log" / "resnet18")
    rank1 = engine.run(save_dir=save_dir, max_epoch=2, eval_freq=10, print_freq=10, test_only=False)

    fresh = torchreid.models.build_model(name="resnet18", num_classes=datamanager.num_train_pids, loss="softmax",
                                         pretrained=False)
    torchreid.utils.load_pretrained_weights(fresh, osp.join(save_dir, "model", "model.pth.tar-2"))
    fresh_optimizer = torchreid.optim.build_optimizer(fresh, optim="adam", lr=0.0003)
    retest = torchreid.engine.ImageSoftmaxEngine(datamanager, fresh, optimizer=fresh_optimizer)
    assert retest.run(save_dir=str(tmp_path / "retest"), test_only=True) == pytest.approx(rank1)
    assert os.path.isfile(osp.join(tmp_path, "retest", "log.txt"))
