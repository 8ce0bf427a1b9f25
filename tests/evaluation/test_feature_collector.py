import pytest
import torch

from fastreid.evaluation import FeatureCollector, ReidEvaluator
from fastreid.utils import comm


def _batch(idx, dim=3):
    idx = torch.as_tensor(idx)
    return ({"targets": idx % 4, "camids": idx % 2, "img_paths": [f"{int(i)}.jpg" for i in idx], "indices": idx},
            idx[:, None].float().expand(-1, dim) + torch.arange(dim) / 10)


def _expected(n, dim=3):
    idx = torch.arange(n)
    return _batch(idx, dim)


def test_loader_order_without_indices():
    col = FeatureCollector()
    inputs, feats = _expected(7)
    for a, b in ((0, 3), (3, 5), (5, 7)):
        col.process({k: v[a:b] for k, v in inputs.items() if k != "indices"}, feats[a:b])
    out = col.evaluate()
    assert set(out) == {"feats", "pids", "camids", "img_paths"}
    torch.testing.assert_close(out["feats"], feats)
    assert out["pids"].tolist() == inputs["targets"].tolist() and out["img_paths"] == inputs["img_paths"]
    assert out["feats"].data_ptr() != col.evaluate()["feats"].data_ptr()  # a fresh copy each call


def test_indices_restore_dataset_order_and_drop_padding():
    col = FeatureCollector()
    perm = torch.cat([torch.randperm(10, generator=torch.Generator().manual_seed(0)), torch.tensor([2, 7])])
    for s in range(0, len(perm), 5):
        col.process(*_batch(perm[s:s + 5]))
    out = col.evaluate()
    inputs, feats = _expected(10)
    torch.testing.assert_close(out["feats"], feats)
    assert out["indices"].tolist() == list(range(10))
    assert out["pids"].tolist() == inputs["targets"].tolist() and out["camids"].tolist() == inputs["camids"].tolist()
    assert out["img_paths"] == inputs["img_paths"]


def test_missing_paths_and_empty_collector():
    col = FeatureCollector()
    with pytest.raises(RuntimeError, match="before any process"):
        col.evaluate()
    col.process({"targets": [1, 2], "camids": [0, 1]}, torch.ones(2, 4, dtype=torch.float16))
    out = col.evaluate()
    assert out["img_paths"] == ["", ""] and out["feats"].dtype == torch.float32 and out["pids"].dtype == torch.long
    col.reset()
    with pytest.raises(RuntimeError):
        col.collect()


def _fake_world(monkeypatch, other_rank_batches, main=True):
    """Two processes: this one and a peer whose collector saw ``other_rank_batches``."""
    peer = FeatureCollector()
    for b in other_rank_batches:
        peer.process(*b)
    monkeypatch.setattr(comm, "get_world_size", lambda: 2)
    monkeypatch.setattr(comm, "synchronize", lambda: None)
    monkeypatch.setattr(comm, "is_main_process", lambda: main)
    sent = []  # what the peer contributes to the all_gather
    monkeypatch.setattr(comm, "all_gather", lambda records: sent.append(records) or [records])
    peer.collect()
    monkeypatch.setattr(comm, "all_gather", lambda records: [records, sent[0]])


def test_gathers_shards_of_every_process(monkeypatch):
    # A distributed sampler's interleaved shards, the last one padded with a duplicate of item 0.
    col = FeatureCollector()
    col.process(*_batch([0, 2, 4, 6, 8]))
    _fake_world(monkeypatch, [_batch([1, 3, 5]), _batch([7, 0])])
    out = col.collect()
    torch.testing.assert_close(out["feats"], _expected(9)[1])
    assert out["img_paths"] == [f"{i}.jpg" for i in range(9)]


def test_non_main_process_returns_nothing(monkeypatch):
    _fake_world(monkeypatch, [_batch([1])], main=False)
    col = FeatureCollector()
    col.process(*_batch([0]))
    assert col.collect() is None and col.evaluate() == {}
    ev = ReidEvaluator(num_query=1)
    ev.process(*_batch([0]))
    assert ev.evaluate() == {}
