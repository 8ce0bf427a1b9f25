import json
import os

import numpy as np
import pytest
import torch

from fastreid.evaluation import ReidEvaluator
from fastreid.evaluation.feature_store import (MANIFEST, FeatureStore, ShardBusyError, ShardPlan, StoreMismatchError,
                                               extract_shards, finalize_store, shard_is_complete, shard_name,
                                               write_shard)
from fastreid.evaluation.store_evaluation import evaluate_stores

N, D, BATCH = 23, 6, 4


@pytest.fixture
def source():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(N, D)).astype(np.float32)
    paths = [f"img_{i:03d}.jpg" for i in range(N)]
    return feats, paths, rng.integers(0, 5, N).astype(np.int64), rng.integers(0, 3, N).astype(np.int64)


class CountingEmbed:
    """Looks features up by path, counting the images it was asked for."""

    def __init__(self, feats, paths):
        self.rows = {p: f for p, f in zip(paths, feats)}
        self.calls = []

    def __call__(self, paths):
        self.calls += list(paths)
        return np.stack([self.rows[p] for p in paths])


def _extract(folder, source, plan, shard_ids, embed=None, fingerprint="fp"):
    feats, paths, pids, camids = source
    embed = embed or CountingEmbed(feats, paths)
    extract_shards(str(folder), plan, fingerprint, shard_ids, embed, BATCH, paths, pids, camids)
    return embed


def test_plan_boundaries_are_batch_aligned_and_cover_every_row():
    for rows, shards, batch in [(23, 3, 4), (8, 5, 4), (1, 2, 1), (100, 7, 8)]:
        plan = ShardPlan.aligned(rows, shards, batch)
        bounds = [plan.bounds(i) for i in range(plan.num_shards)]
        assert bounds[0][0] == 0 and bounds[-1][1] == rows and plan.num_shards <= shards
        assert all(b[1] == c[0] for b, c in zip(bounds, bounds[1:]))
        assert all(start % batch == 0 for start, _ in bounds)
    with pytest.raises(IndexError):
        ShardPlan.aligned(8, 5, 4).bounds(2)


def test_store_round_trip_across_ranks_and_manifest_comes_last(tmp_path, source):
    feats, paths, pids, camids = source
    plan = ShardPlan.aligned(N, 3, BATCH)
    _extract(tmp_path, source, plan, range(0, 3, 2))  # "rank 0" of 2
    assert not finalize_store(str(tmp_path), plan, "fp")
    assert not os.path.exists(tmp_path / MANIFEST)
    with pytest.raises(FileNotFoundError, match="not a finished feature store"):
        FeatureStore.open(str(tmp_path))
    _extract(tmp_path, source, plan, range(1, 3, 2))  # "rank 1"
    assert finalize_store(str(tmp_path), plan, "fp", {"model": "x"})
    store = FeatureStore.open(str(tmp_path))
    assert len(store) == N and store.dim == D and store.manifest["meta"] == {"model": "x"}
    assert isinstance(store._shards[0], np.memmap)
    assert store.paths == paths
    assert np.array_equal(store.pids, pids) and np.array_equal(store.camids, camids)
    for chunk in (1, 5, 8, 100):  # chunks that straddle shard boundaries
        got = [(s, c) for s, c in store.iter_chunks(chunk)]
        assert [s for s, _ in got] == list(range(0, N, chunk))
        assert np.array_equal(np.concatenate([c for _, c in got]), feats)
    assert np.array_equal(store.rows(3, 17), feats[3:17])


def test_rerun_redoes_only_missing_and_partial_shards(tmp_path, source):
    feats, paths, _, _ = source
    plan = ShardPlan.aligned(N, 3, BATCH)
    _extract(tmp_path, source, plan, range(3))
    finalize_store(str(tmp_path), plan, "fp")
    reference = FeatureStore.open(str(tmp_path)).rows(0, N)
    # A kill in the middle of shard 1: only its temporary folder, half written, remains.
    os.remove(tmp_path / MANIFEST)
    start, stop = plan.bounds(1)
    os.rename(tmp_path / shard_name(1), tmp_path / f".{shard_name(1)}.tmp-999999-deadbeef")
    np.lib.format.open_memmap(tmp_path / f".{shard_name(1)}.tmp-999999-deadbeef" / "features.npy", mode="r+")[2:] = 0
    # and shard 2 was truncated on disk
    with open(tmp_path / shard_name(2) / "features.npy", "r+b") as f:
        f.truncate(100)
    assert not finalize_store(str(tmp_path), plan, "fp")
    assert (tmp_path / shard_name(2)).exists()  # only its owner removes a damaged shard
    kept = os.stat(tmp_path / shard_name(0) / "features.npy").st_ino
    embed = _extract(tmp_path, source, plan, range(3))
    assert embed.calls == paths[start:]  # shards 1 and 2 only
    assert os.stat(tmp_path / shard_name(0) / "features.npy").st_ino == kept
    assert finalize_store(str(tmp_path), plan, "fp")
    assert np.array_equal(FeatureStore.open(str(tmp_path)).rows(0, N), reference)
    assert np.array_equal(reference, feats)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


def test_other_extraction_is_refused(tmp_path, source):
    plan = ShardPlan.aligned(N, 3, BATCH)
    _extract(tmp_path, source, plan, [0])
    with pytest.raises(StoreMismatchError, match="fingerprint"):
        _extract(tmp_path, source, plan, [0], fingerprint="other")
    with pytest.raises(StoreMismatchError, match="shard plan"):
        _extract(tmp_path, source, ShardPlan.aligned(N, 2, BATCH), [0])


def test_wrong_batch_rows_fail_without_leaving_a_shard(tmp_path, source):
    feats, paths, pids, camids = source
    plan = ShardPlan.aligned(N, 3, BATCH)
    with pytest.raises(ValueError, match="expected"):
        extract_shards(str(tmp_path), plan, "fp", [0], lambda p: feats[:1], BATCH, paths, pids, camids)
    assert os.listdir(tmp_path) == []  # neither a shard nor its temporary folder


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_store_evaluation_equals_in_memory_evaluation(tmp_path, metric):
    rng = np.random.default_rng(1)
    num_q, num_g = 9, 40
    feats = rng.normal(size=(num_q + num_g, D)).astype(np.float32)
    pids = np.concatenate([np.arange(num_q) % 4, rng.integers(0, 4, num_g)]).astype(np.int64)
    camids = rng.integers(0, 3, num_q + num_g).astype(np.int64)
    stores = []
    for name, rows in (("q", slice(0, num_q)), ("g", slice(num_q, None))):
        paths = [f"{name}{i}" for i in range(len(feats[rows]))]
        plan = ShardPlan.aligned(len(paths), 3, 2)
        extract_shards(str(tmp_path / name), plan, "fp", range(plan.num_shards),
                       CountingEmbed(feats[rows], paths), 2, paths, pids[rows], camids[rows])
        finalize_store(str(tmp_path / name), plan, "fp")
        stores.append(FeatureStore.open(str(tmp_path / name)))
    evaluator = ReidEvaluator(num_query=num_q, metric=metric)
    evaluator.process({"targets": torch.from_numpy(pids), "camids": torch.from_numpy(camids)}, torch.from_numpy(feats))
    want = evaluator.evaluate()
    got = evaluate_stores(*stores, metric=metric, query_chunk=4, gallery_chunk=7)
    assert list(got) == list(want)
    np.testing.assert_allclose([got[k] for k in want], [want[k] for k in want], rtol=1e-12)
    with open(tmp_path / "q" / MANIFEST) as f:
        assert json.load(f)["num_rows"] == num_q


def test_take_gathers_sorted_rows_across_shards(tmp_path, source):
    feats = source[0]
    plan = ShardPlan.aligned(N, 3, BATCH)
    _extract(tmp_path, source, plan, range(plan.num_shards))
    finalize_store(str(tmp_path), plan, "fp")
    store = FeatureStore.open(str(tmp_path))
    for rows in ([], [0], [3, 4, 8, 9, 22], list(range(N))):  # [3, 4 | 8, 9 | 22] spans all three shards
        assert np.array_equal(store.take(np.array(rows, dtype=np.int64)), feats[rows].reshape(len(rows), D))
    with pytest.raises(ValueError, match="sorted ascending"):
        store.take(np.array([5, 2]))
    with pytest.raises(ValueError, match=f"within \\[0, {N}\\)"):
        store.take(np.array([1, N]))


def test_a_live_writer_of_the_same_shard_is_refused_and_a_dead_ones_leftover_removed(tmp_path, source):
    import fcntl

    plan = ShardPlan.aligned(N, 3, BATCH)
    other = tmp_path / f".{shard_name(0)}.tmp-1-0a1b2c3d"
    other.mkdir(parents=True)
    held = os.open(other, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another process is writing shard 0
    try:
        with pytest.raises(ShardBusyError, match="being written by another process"):
            _extract(tmp_path, source, plan, [0])
        assert os.listdir(tmp_path) == [other.name]  # its temporary is left alone
    finally:
        os.close(held)  # that process dies: its temporary is a leftover now
    _extract(tmp_path, source, plan, [0])
    assert os.listdir(tmp_path) == [shard_name(0)]
    assert shard_is_complete(str(tmp_path), 0, plan, "fp")


def test_a_shard_finished_by_another_process_meanwhile_is_kept(tmp_path, source):
    feats, paths, pids, camids = source
    plan = ShardPlan.aligned(N, 3, BATCH)
    _extract(tmp_path, source, plan, [1])
    done = os.stat(tmp_path / shard_name(1) / "features.npy").st_ino
    start, stop = plan.bounds(1)  # a second writer that checked before the first one finished
    write_shard(str(tmp_path), 1, plan, "fp", [feats[start:stop]], paths[start:stop], pids[start:stop],
                camids[start:stop])
    assert os.listdir(tmp_path) == [shard_name(1)]
    assert os.stat(tmp_path / shard_name(1) / "features.npy").st_ino == done
