import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from tool_loading import load_tool
from PIL import Image

from fastreid.data.datasets import build_dataset
from fastreid.predictor import FeatureExtractor
from fastreid.search import GalleryIndex, list_images, write_search_report

search_tool = load_tool("search")
CHROMIUM = shutil.which("chromium")


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_list_images(tmp_path):
    for rel in ("b/2.png", "b/1.JPG", "a.jpg", "notes.txt"):
        (tmp_path / "g" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "g" / rel).write_bytes(b"")
    (tmp_path / "q.png").write_bytes(b"")
    found = list_images([str(tmp_path / "q.png"), str(tmp_path / "g")])
    assert found == [str(tmp_path / p) for p in ("q.png", "g/a.jpg", "g/b/1.JPG", "g/b/2.png")]
    with pytest.raises(FileNotFoundError, match="nope"):
        list_images([str(tmp_path / "nope")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No images"):
        list_images([str(tmp_path / "empty")])


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_index_kinds_match_brute_force_and_round_trip(tmp_path, metric):
    rng = np.random.default_rng(0)
    gallery, queries = rng.normal(size=(200, 8)).astype(np.float32), rng.normal(size=(6, 8)).astype(np.float32)
    paths = [f"g{i}.jpg" for i in range(200)]
    if metric == "cosine":
        brute = _unit(queries) @ _unit(gallery).T
        order = np.argsort(-brute, axis=1, kind="stable")[:, :5]
    else:
        brute = ((queries[:, None, :] - gallery[None]) ** 2).sum(-1)
        order = np.argsort(brute, axis=1, kind="stable")[:, :5]
    exact_ivfpq = {"nlist": 4, "nprobe": 4, "pq_m": 4, "pq_nbits": 4, "refine_factor": 40}  # re-ranks all 200
    for kind, params in (("flat", {}), ("ivf", {"nlist": 4, "nprobe": 4}), ("ivfpq", exact_ivfpq),
                         ("hnsw", {"ef_search": 200})):
        index = GalleryIndex.build(torch.from_numpy(gallery), paths, kind=kind, metric=metric, **params)
        scores, ids = index.search(queries, 5)
        np.testing.assert_array_equal(ids, order, err_msg=kind)
        np.testing.assert_allclose(scores, np.take_along_axis(brute, order, 1), atol=1e-4, err_msg=kind)
        index.save(str(tmp_path / kind))
        loaded = GalleryIndex.load(str(tmp_path / kind))
        assert loaded.paths == paths and loaded.meta == index.meta and loaded.higher_is_closer == (metric == "cosine")
        assert loaded.search_paths(queries[:1], 3) == index.search_paths(queries[:1], 3)
        assert [p for p, _ in loaded.search_paths(queries[:1], 3)[0]] == [paths[i] for i in order[0, :3]]
    assert len(index.search(queries, 500)[1][0]) == 200  # k is capped at the gallery size


@pytest.mark.parametrize("kind, params", [("ivf", {}), ("ivfpq", {"pq_m": 4, "pq_nbits": 4}),
                                          ("ivfpq", {"pq_m": 4, "pq_nbits": 4, "refine_factor": 3})])
def test_search_params_survive_save_and_load(tmp_path, kind, params):
    from fastreid.evaluation.faiss_index import import_faiss
    gallery = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    index = GalleryIndex.build(gallery, [f"g{i}.jpg" for i in range(300)], kind=kind, nlist=6, nprobe=5,
                               train_size=120, **params)
    assert index.meta["trained_on"] == 120 and index.meta["nprobe"] == 5
    index.save(str(tmp_path))
    loaded = GalleryIndex.load(str(tmp_path))
    assert import_faiss().extract_index_ivf(loaded.index).nprobe == 5
    if params.get("refine_factor"):
        assert loaded.index.k_factor == 3
    np.testing.assert_array_equal(loaded.search(gallery[:7], 4)[1], index.search(gallery[:7], 4)[1])
    loaded.set_search_params(nprobe=2)  # a query-time override reaches the faiss index and the metadata
    assert import_faiss().extract_index_ivf(loaded.index).nprobe == 2 == loaded.meta["nprobe"]
    with pytest.raises(ValueError, match="nprobe must be at least 1, got 0"):
        loaded.set_search_params(nprobe=0)


@pytest.mark.parametrize("kind, params", [("flat", {}), ("ivf", {"nlist": 8, "train_size": 40}),
                                          ("ivfpq", {"nlist": 4, "pq_m": 4, "pq_nbits": 4, "refine_factor": 2}),
                                          ("hnsw", {"hnsw_m": 8})])
def test_index_of_a_store_equals_the_in_memory_index(tmp_path, kind, params):
    from fastreid.evaluation.feature_store import FeatureStore, ShardPlan, extract_shards, finalize_store

    rng = np.random.default_rng(3)
    feats = rng.normal(size=(90, 16)).astype(np.float32)
    paths = [f"g{i}.jpg" for i in range(len(feats))]
    rows = {p: f for p, f in zip(paths, feats)}
    plan = ShardPlan.aligned(len(paths), 4, 5)
    labels = np.zeros(len(paths), np.int64)
    extract_shards(str(tmp_path), plan, "fp", range(plan.num_shards), lambda ps: np.stack([rows[p] for p in ps]), 5,
                   paths, labels, labels)
    finalize_store(str(tmp_path), plan, "fp", {"metric": "euclidean"})
    store = FeatureStore.open(str(tmp_path))
    queries = rng.normal(size=(7, 16)).astype(np.float32)
    given = queries.copy()
    for metric in ("cosine", None):  # None: the store's own metric (euclidean)
        from_store = GalleryIndex.build_from_store(store, metric=metric, chunk_rows=13, kind=kind, **params)
        in_memory = GalleryIndex.build(feats.copy(), paths, kind=kind, metric=metric or "euclidean", **params)
        assert from_store.paths == paths and from_store.meta == in_memory.meta
        got, want = from_store.search(queries, 6), in_memory.search(queries, 6)
        assert np.array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])
    assert np.array_equal(store.rows(0, len(store)), feats)  # the store itself is left as it was
    assert np.array_equal(queries, given)  # and so are the queries


def test_index_errors(tmp_path):
    with pytest.raises(ValueError, match="nlist=5 inverted lists need at least as many vectors, got 3"):
        GalleryIndex.build(np.ones((3, 4)), ["a", "b", "c"], kind="ivf", nlist=5)
    with pytest.raises(ValueError, match="pq_m=3 does not divide"):
        GalleryIndex.build(np.ones((3, 4)), ["a", "b", "c"], kind="ivfpq", nlist=1, pq_m=3)
    with pytest.raises(ValueError, match="kind"):
        GalleryIndex.build(np.ones((2, 4)), ["a", "b"], kind="lsh")
    with pytest.raises(ValueError, match="2 features but 1 paths"):
        GalleryIndex.build(np.ones((2, 4)), ["a"])
    with pytest.raises(ValueError, match="dimension 3"):
        GalleryIndex.build(np.ones((2, 4)), ["a", "b"]).search(np.ones((1, 3)))
    with pytest.raises(FileNotFoundError, match="index.faiss"):
        GalleryIndex.load(str(tmp_path))


_WITHOUT_FAISS = """
import sys
import fastreid.evaluation, fastreid.search
assert "faiss" not in sys.modules, "a module imports faiss at import time"
sys.modules["faiss"] = None  # from here on, faiss is absent
from fastreid.evaluation import is_faiss_available
from fastreid.search import GalleryIndex
assert not is_faiss_available()
try:
    GalleryIndex.build([[1.0, 0.0]], ["a.jpg"])
except ImportError as e:
    assert "pip install faiss-cpu" in str(e), e
else:
    raise AssertionError("GalleryIndex.build worked without faiss")
"""


def test_search_imports_without_faiss():
    subprocess.run([sys.executable, "-c", _WITHOUT_FAISS], check=True, timeout=120)


def _run_search_tool(cfg, setup_files, tmp_path, topk=4, extra=()):
    """Indexes the synthetic test gallery, queries with three gallery images; returns (gallery, queries, out)."""
    config_file, weights = setup_files
    build_dataset("SyntheticPerson", cfg)
    gallery_dir = os.path.join(cfg.DATASETS.ROOT, "SyntheticPerson", "bounding_box_test")
    gallery = list_images([gallery_dir])
    queries = gallery[1:4]
    index_dir, out = str(tmp_path / "index"), str(tmp_path / "report")
    search_tool.main(["index", "--config-file", config_file, "--weights", weights, "--gallery", gallery_dir,
                      "--output", index_dir, "--batch-size", "4"])
    search_tool.main(["query", "--index-dir", index_dir, "--query", *queries, "--topk", str(topk),
                      "--output", out, *extra])
    return gallery, queries, out


def test_search_tool_finds_query_itself(cfg, model, setup_files, tmp_path):
    gallery, queries, out = _run_search_tool(cfg, setup_files, tmp_path)
    assert sorted(os.listdir(tmp_path / "index")) == ["index.faiss", "meta.json", "paths.json"]
    records = json.load(open(os.path.join(out, "results.json")))
    assert [r["query"] for r in records] == queries
    feats = FeatureExtractor.from_config(cfg, model=model, normalize=True)
    sims = (feats(queries) @ feats(gallery).T).numpy()
    for record, row in zip(records, sims):
        assert record["results"][0]["path"] == record["query"]
        assert record["results"][0]["score"] == pytest.approx(1.0, abs=1e-5)
        assert len(record["results"]) == 4
        expected = [gallery[i] for i in np.argsort(-row, kind="stable")[:4]]
        assert [r["path"] for r in record["results"]] == expected
        np.testing.assert_allclose([r["score"] for r in record["results"]], np.sort(row)[::-1][:4], atol=1e-5)
    page = open(os.path.join(out, "results.html")).read()
    assert len(re.findall(r"<img ", page)) == len(queries) * 5
    assert 'src="../' in page  # relative links to the gallery images


def test_embedded_report_is_self_contained(tmp_path):
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 16), (0, 128, 255)).save(image)
    page = write_search_report(str(tmp_path / "out" / "r.html"), [str(image)], [[(str(image), 1.0)]], embed=True)
    srcs = re.findall(r'src="([^"]*)"', open(page).read())
    assert len(srcs) == 2 and all(s.startswith("data:image/png;base64,") for s in srcs)


def _render(page, profile):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom", f"file://{page}"]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    body = re.search(r"<body([^>]*)>", dom).group(1)
    return dict(re.findall(r'data-images-(\w+)="([^"]*)"', body)), dom


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(cfg, setup_files, tmp_path):
    _, queries, out = _run_search_tool(cfg, setup_files, tmp_path, topk=3)
    expected = len(queries) * 4
    state, dom = _render(os.path.join(out, "results.html"), tmp_path / "profile")
    assert state == {"total": str(expected), "loaded": str(expected), "failed": "0", "ready": "true"}
    assert len(re.findall(r'<figure class="result">', dom)) == len(queries) * 3
    # Control: the relative links break when the page moves away from the images, and the check notices.
    moved = tmp_path / "elsewhere" / "deeper"
    moved.mkdir(parents=True)
    shutil.copy(os.path.join(out, "results.html"), moved)
    state, _ = _render(str(moved / "results.html"), tmp_path / "profile")
    assert state == {"total": str(expected), "loaded": "0", "failed": str(expected), "ready": "false"}
