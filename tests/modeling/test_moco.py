"""MoCo: the memory loss against its formula, the FIFO ring of momentum keys, the EMA update, config wiring."""
import math
import os
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from fastreid.config import get_cfg
from fastreid.modeling import build_model
from fastreid.modeling.heads import EmbeddingHead
from fastreid.modeling.losses.memory import memory_cosface_loss
from fastreid.modeling.meta_arch.moco import MoCo
from fastreid.utils import comm
from fastreid.utils.checkpoint import Checkpointer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from toy_backbone import toy_backbone_registered  # noqa: E402
from trainer_utils import RESUME_OVERRIDES, tiny_cfg, train_interrupted  # noqa: E402

BATCH = 4


@pytest.fixture(scope="module", autouse=True)
def toy_backbone():
    with toy_backbone_registered("build_moco_test_backbone"):
        yield


def _cfg(*opts):
    cfg = get_cfg()
    cfg.merge_from_list([
        "MODEL.DEVICE", "cpu", "MODEL.META_ARCHITECTURE", "MoCo", "MODEL.BACKBONE.NAME", "build_moco_test_backbone",
        "MODEL.BACKBONE.PRETRAIN", "False", "MODEL.HEADS.NUM_CLASSES", "3", "MODEL.QUEUE_SIZE", "6",
        "MODEL.MOCO.MOMENTUM", "0.9", *opts])
    return cfg


def _batch(seed, targets=(0, 0, 2, 2)):
    g = torch.Generator().manual_seed(seed)
    return {"images": torch.rand(len(targets), 3, 16, 8, generator=g) * 255, "targets": torch.tensor(targets)}


def _keys(model, batch):
    """What the momentum encoder makes of a batch now, normalised (its BN uses batch statistics)."""
    images = model.preprocess_image(batch)
    return torch.nn.functional.normalize(model.encode_keys(images, batch["targets"]), dim=1)


def _brute_force_loss(q, t, k, kl, margin, gamma, exclude):
    """The memory loss by the formula, one query and one key at a time."""
    per_query = []
    for i in range(len(q)):
        pos, neg = [], []
        for j in range(len(k)):
            if kl[j] < 0 or exclude[i][j]:
                continue
            s = float(q[i] @ k[j]) / (float(q[i].norm()) * float(k[j].norm()))
            (pos if kl[j] == t[i] else neg).append(s)
        if pos and neg:
            lse_p = math.log(sum(math.exp(-gamma * s) for s in pos))
            lse_n = math.log(sum(math.exp(gamma * (s + margin)) for s in neg))
            per_query.append(math.log1p(math.exp(lse_p + lse_n)))
    return sum(per_query) / len(per_query)


def test_memory_loss_equals_its_formula_on_a_small_case():
    g = torch.Generator().manual_seed(0)
    queries, keys = torch.randn(3, 4, generator=g), torch.randn(6, 4, generator=g)
    targets = torch.tensor([1, 2, 5])  # query 2 has no positive key: left out of the mean
    key_labels = torch.tensor([1, 2, -1, 1, 3, 2])  # slot 2 is empty
    exclude = torch.zeros(3, 6, dtype=torch.bool)
    exclude[0, 0] = exclude[1, 1] = True  # each query's own key
    got = memory_cosface_loss(queries, targets, keys, key_labels, margin=0.25, gamma=4.0, exclude=exclude)
    want = _brute_force_loss(queries, targets, keys, key_labels, 0.25, 4.0, exclude.tolist())
    assert float(got) == pytest.approx(want, rel=1e-5)
    # Without the exclusion query 0's own key counts as a positive, and the loss changes.
    again = memory_cosface_loss(queries, targets, keys, key_labels, margin=0.25, gamma=4.0)
    assert float(again) == pytest.approx(_brute_force_loss(queries, targets, keys, key_labels, 0.25, 4.0,
                                                           torch.zeros(3, 6, dtype=torch.bool).tolist()), rel=1e-5)
    assert float(again) != pytest.approx(want, rel=1e-3)


def test_memory_loss_is_zero_with_gradient_when_no_query_has_a_positive_and_a_negative():
    queries = torch.randn(2, 4, requires_grad=True)
    loss = memory_cosface_loss(queries, torch.tensor([0, 1]), torch.randn(3, 4), torch.tensor([-1, -1, -1]), 0.25, 32)
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.equal(queries.grad, torch.zeros(2, 4))


def test_from_config_reads_the_moco_keys_and_the_feature_width():
    model = build_model(_cfg("MODEL.MOCO.MARGIN", "0.3", "MODEL.MOCO.GAMMA", "16", "MODEL.MOCO.SCALE", "0.5"))
    assert isinstance(model, MoCo)
    assert (model.momentum, model.margin, model.gamma, model.scale) == (0.9, 0.3, 16.0, 0.5)
    assert model.queue.shape == (6, 8) and model.queue_labels.tolist() == [-1] * 6
    after = build_model(_cfg("MODEL.HEADS.NECK_FEAT", "after", "MODEL.HEADS.EMBEDDING_DIM", "5"))
    assert after.queue.shape == (6, 5)
    assert not any(p.requires_grad for p in model.momentum_encoder.parameters())


def test_queue_is_a_fifo_ring_of_momentum_keys_and_their_identities():
    model = build_model(_cfg())
    model.train()
    first, second = _batch(1, (0, 0, 1, 1)), _batch(2, (2, 2, 0, 0))
    terms = model(first)
    assert set(terms) == {"loss_cls", "loss_mb"}
    keys1 = _keys(model, first)
    assert int(model.queue_ptr) == 4
    torch.testing.assert_close(model.queue[:4], keys1)
    assert model.queue_labels.tolist() == [0, 0, 1, 1, -1, -1]

    model(second)  # 4 keys into 6 slots holding 4: slots 4, 5, then 0, 1 (the oldest) are overwritten
    keys2 = _keys(model, second)
    assert int(model.queue_ptr) == 2
    torch.testing.assert_close(model.queue[[4, 5, 0, 1]], keys2)
    torch.testing.assert_close(model.queue[2:4], keys1[2:])
    assert model.queue_labels.tolist() == [0, 0, 1, 1, 2, 2]


def test_loss_mb_is_the_memory_loss_of_the_batch_against_its_keys_and_the_queue():
    model = build_model(_cfg("MODEL.MOCO.SCALE", "0.5"))
    model.train()
    model(_batch(1, (0, 0, 1, 1)))
    queue, labels = model.queue.clone(), model.queue_labels.clone()
    batch = _batch(2, (1, 1, 2, 2))
    terms = model(batch)
    images = model.preprocess_image(batch)
    with torch.no_grad():
        queries = model.heads(model.backbone(images), batch["targets"])["features"]
    bank = torch.cat([_keys(model, batch), queue])
    exclude = torch.zeros(BATCH, len(bank), dtype=torch.bool)
    exclude[:, :BATCH] = torch.eye(BATCH, dtype=torch.bool)
    want = _brute_force_loss(queries, batch["targets"], bank, torch.cat([batch["targets"], labels]),
                             0.25, 32.0, exclude.tolist())
    assert float(terms["loss_mb"].detach()) == pytest.approx(0.5 * want, rel=1e-4)
    assert terms["loss_mb"].requires_grad


def test_momentum_encoder_starts_from_the_trained_weights_then_follows_the_ema_formula():
    model = build_model(_cfg())
    model.train()
    with torch.no_grad():  # weights loaded after construction (MODEL.WEIGHTS) are the starting point
        for p in model.backbone.parameters():
            p.add_(1.0)

    def trained():
        return [p.detach().clone() for p in list(model.backbone.parameters()) + list(model.heads.parameters())]

    model(_batch(1))
    for k, q in zip(model.momentum_encoder.parameters(), trained()):
        assert torch.equal(k, q)

    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    before = [k.detach().clone() for k in model.momentum_encoder.parameters()]
    sum(model(_batch(2)).values()).backward()
    optimizer.step()
    queries = trained()
    model(_batch(3))
    changed = 0
    for k, k0, q in zip(model.momentum_encoder.parameters(), before, queries):
        torch.testing.assert_close(k, 0.9 * k0 + 0.1 * q)
        changed += int(not torch.equal(k, k0))
    assert changed > 0


def test_a_baseline_checkpoint_loads_and_starts_the_momentum_encoder(tmp_path, caplog):
    baseline = build_model(_cfg("MODEL.META_ARCHITECTURE", "Baseline"))
    torch.save({"model": baseline.state_dict()}, tmp_path / "baseline.pth")
    model = build_model(_cfg())
    model.train()
    model(_batch(1))  # a ready momentum encoder and a filled queue, which the load must reset
    Checkpointer(model).load(str(tmp_path / "baseline.pth"))  # no missing-key error: the file fits
    assert not bool(model.momentum_ready) and model.queue_labels.tolist() == [-1] * 6
    model(_batch(2))
    for k, q in zip(model.momentum_encoder.parameters(), baseline.parameters()):
        assert torch.equal(k, q)


def test_a_forward_without_gradients_changes_neither_the_queue_nor_the_momentum_encoder():
    model = build_model(_cfg())
    model.train()
    model(_batch(1))
    state = {k: v.clone() for k, v in model.state_dict().items() if not k.endswith("running_mean")
             and not k.endswith("running_var") and not k.endswith("num_batches_tracked")}
    with torch.no_grad():
        assert "loss_mb" in model(_batch(2))
    for key, value in state.items():
        assert torch.equal(model.state_dict()[key], value), key


def test_eval_mode_returns_the_baseline_features():
    model = build_model(_cfg()).eval()
    images = _batch(1)["images"]
    with torch.no_grad():
        want = model.heads(model.backbone(model.preprocess_image(images)))
        assert torch.equal(model(images), want)


def test_a_queue_smaller_than_the_batch_is_an_error_naming_the_key():
    model = build_model(_cfg("MODEL.QUEUE_SIZE", "3"))
    model.train()
    with pytest.raises(ValueError, match="MODEL.QUEUE_SIZE"):
        model(_batch(1))
    with pytest.raises(ValueError, match="MODEL.MOCO.MOMENTUM"):
        build_model(_cfg("MODEL.MOCO.MOMENTUM", "1.5"))


def _train(data, out, *, resume=False, stop_after_iter=None):
    """The engine tests' tiny exact-resume run (6 iterations, a checkpoint every 2) with MoCo on the toy
    backbone; a queue of 12 slots for 8 images per step, so the ring pointer wraps."""
    cfg = tiny_cfg(data, out, RESUME_OVERRIDES + [
        "MODEL.META_ARCHITECTURE", "MoCo", "MODEL.BACKBONE.NAME", "build_moco_test_backbone",
        "MODEL.QUEUE_SIZE", "12", "MODEL.MOCO.MOMENTUM", "0.5"])
    return train_interrupted(cfg, resume=resume, stop_after_iter=stop_after_iter).start_iter


def test_a_resumed_moco_run_equals_an_uninterrupted_one(tmp_path):
    data = str(tmp_path / "data")
    try:
        _train(data, str(tmp_path / "straight"))
        _train(data, str(tmp_path / "resumed"), stop_after_iter=3)
        assert (tmp_path / "resumed" / "last_checkpoint").read_text() == "model_iter_0000003.pth"
        halfway = torch.load(tmp_path / "resumed" / "model_iter_0000003.pth", weights_only=True)["model"]
        assert int(halfway["queue_ptr"]) == (4 * 8) % 12 and bool(halfway["momentum_ready"])
        assert _train(data, str(tmp_path / "resumed"), resume=True) == 4
    finally:
        torch.use_deterministic_algorithms(False)
    a = torch.load(tmp_path / "straight" / "model_final.pth", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "model_final.pth", weights_only=True)
    assert a["iteration"] == b["iteration"] == 5
    assert int(a["model"]["queue_ptr"]) == (6 * 8) % 12 and int((a["model"]["queue_labels"] >= 0).sum()) == 12
    assert a["model"].keys() == b["model"].keys()
    assert [key for key, value in a["model"].items() if not torch.equal(value, b["model"][key])] == []
    # The momentum encoder moved away from its starting copy and is not the trained encoder.
    assert not torch.equal(a["model"]["momentum_encoder.backbone.0.weight"], a["model"]["backbone.0.weight"])


def _enqueue_worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size,
                            timeout=timedelta(seconds=60))
    try:
        model = MoCo(backbone=nn.Conv2d(3, 4, 1), heads=EmbeddingHead(feat_dim=4, num_classes=3), losses=[],
                     pixel_mean=[0.0] * 3, pixel_std=[1.0] * 3, feat_dim=4, queue_size=6)
        model.enqueue(torch.full((2, 4), float(rank + 1)), torch.tensor([10 * rank, 10 * rank + 1]))
        model.enqueue(torch.full((2, 4), float(rank + 3)), torch.tensor([10 * rank + 2, 10 * rank + 3]))
        torch.save({k: v for k, v in model.state_dict().items() if k.startswith("queue")},
                   os.path.join(out_dir, f"rank{rank}.pth"))
    finally:
        comm.destroy_process_groups()


@pytest.mark.slow
def test_two_processes_enqueue_the_keys_of_both_in_rank_order(tmp_path):
    mp.spawn(_enqueue_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    # Step 1 fills slots 0-3 with rank 0's then rank 1's keys; step 2 writes 4, 5 and wraps to 0, 1.
    for rank in range(2):
        state = torch.load(tmp_path / f"rank{rank}.pth", weights_only=True)
        assert int(state["queue_ptr"]) == 2
        assert state["queue_labels"].tolist() == [12, 13, 10, 11, 2, 3]
        assert state["queue"][:, 0].tolist() == [4.0, 4.0, 2.0, 2.0, 3.0, 3.0]
