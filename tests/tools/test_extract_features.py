import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tool_loading import TOOLS, load_tool

from fastreid.evaluation.feature_store import MANIFEST, FeatureStore, shard_name
from fastreid.predictor import FeatureExtractor, load_inference_config

extract_tool = load_tool("extract_features")
REPO = Path(__file__).parents[2]
NUM_IMAGES, BATCH = 13, 3


@pytest.fixture
def images(tmp_path):
    """13 random 32×16 crops named ``<pid>_c<cam>_<n>.jpg`` in two folders."""
    rng = np.random.default_rng(0)
    for i in range(NUM_IMAGES):
        folder = tmp_path / "crops" / ("a" if i < 7 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (32, 16, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i % 5:04d}_c{i % 3 + 1}_{i}.jpg")
    return str(tmp_path / "crops")


def _args(setup_files, images, output, *extra):
    config, weights = setup_files
    return ["--config-file", config, "--weights", weights, "--images", images, "--output", str(output),
            "--batch-size", str(BATCH), *extra]


def _reference(setup_files, images):
    """Features of one extraction of the whole list in one process, with the tool's batch size."""
    paths, pids, camids = extract_tool.read_images([images])
    extractor = FeatureExtractor.from_config(load_inference_config(*setup_files), batch_size=BATCH)
    return extractor(paths).numpy(), paths, pids, camids


def _assert_store_equals(folder, reference):
    feats, paths, pids, camids = reference
    store = FeatureStore.open(str(folder))
    assert np.array_equal(store.rows(0, len(store)), feats)  # bit for bit
    assert store.paths == paths
    assert np.array_equal(store.pids, pids) and np.array_equal(store.camids, camids)


def test_two_jobs_equal_one_extraction_bit_for_bit(setup_files, images, tmp_path):
    out = tmp_path / "store"
    extract_tool.main(_args(setup_files, images, out, "--shards", "3", "--shard-rank", "0", "--shard-world", "2"))
    assert sorted(os.listdir(out)) == [shard_name(0), shard_name(2)]  # rank 0's shards, no manifest yet
    extract_tool.main(_args(setup_files, images, out, "--shards", "3", "--shard-rank", "1", "--shard-world", "2"))
    assert (out / MANIFEST).exists()
    reference = _reference(setup_files, images)
    _assert_store_equals(out, reference)
    assert reference[2][0] == 0 and reference[3][0] == 1  # labels parsed from "0000_c1_0.jpg"
    meta = json.loads((out / MANIFEST).read_text())
    assert meta["meta"]["batch_size"] == BATCH and meta["dim"] == reference[0].shape[1]


def test_list_file_and_labels(tmp_path, images):
    first = sorted(Path(images).rglob("*.jpg"))[0]
    (tmp_path / "list.txt").write_text(f"# comment\n{os.path.relpath(first, tmp_path)} 7 2\n"
                                       f"{os.path.relpath(first, tmp_path)}\n")
    paths, pids, camids = extract_tool.read_images([str(tmp_path / "list.txt")])
    assert paths == [str(first)] * 2 and pids.tolist() == [7, int(first.name[:4])]
    assert camids.tolist() == [2, int(first.name.split("_c")[1][0])]
    (tmp_path / "bad.txt").write_text("a.jpg 1\n")
    with pytest.raises(ValueError, match="bad.txt:1"):
        extract_tool.read_images([str(tmp_path / "bad.txt")])


_KILL_AFTER_BATCHES = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from tool_loading import load_tool
from fastreid.predictor import FeatureExtractor
tool = load_tool("extract_features")
forward, seen = FeatureExtractor.forward_batch, []
def dying_forward(self, batch):
    seen.append(1)
    if len(seen) > {batches}:
        os.kill(os.getpid(), signal.SIGKILL)
    return forward(self, batch)
FeatureExtractor.forward_batch = dying_forward
tool.main({argv!r})
"""


@pytest.mark.slow
def test_sigkill_mid_shard_then_rerun_redoes_only_that_shard(setup_files, images, tmp_path, monkeypatch):
    out = tmp_path / "store"
    argv = _args(setup_files, images, out, "--shards", "3", "MODEL.PRECISION", "fp32")
    # 13 images, batches of 3 -> shards of 6, 6, 1 rows (2, 2, 1 batches): die in the second batch of shard 1.
    code = _KILL_AFTER_BATCHES.format(tests=str(Path(__file__).parent), batches=3, argv=argv)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert sorted(os.listdir(out))[0].startswith(f".{shard_name(1)}.tmp-")  # partial shard 1 only
    assert (out / shard_name(0)).is_dir() and not (out / shard_name(1)).exists() and not (out / MANIFEST).exists()
    done = os.stat(out / shard_name(0) / "features.npy").st_ino
    seen = []
    forward = FeatureExtractor.forward_batch
    monkeypatch.setattr(FeatureExtractor, "forward_batch", lambda self, b: seen.append(len(b)) or forward(self, b))
    extract_tool.main(argv)
    assert seen == [3, 3, 1]  # shards 1 and 2 only
    assert os.stat(out / shard_name(0) / "features.npy").st_ino == done
    _assert_store_equals(out, _reference(setup_files, images))


@pytest.mark.slow
def test_two_gloo_processes_equal_one_extraction(setup_files, images, tmp_path):
    out = tmp_path / "store"
    cmd = [sys.executable, str(TOOLS / "extract_features.py"), *_args(setup_files, images, out, "--num-gpus", "2")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=str(REPO),
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(json.loads((out / MANIFEST).read_text())["shards"]) == 2
    _assert_store_equals(out, _reference(setup_files, images))


def test_evaluate_command_reads_two_stores(setup_files, images, tmp_path, capsys):
    for name in ("q", "g"):
        extract_tool.main(_args(setup_files, images, tmp_path / name, "--shards", "2"))
    results = extract_tool.main(["evaluate", "--query", str(tmp_path / "q"), "--gallery", str(tmp_path / "g")])
    assert json.loads(capsys.readouterr().out) == results
    assert set(results) >= {"Rank-1", "mAP", "mINP"} and 0 <= results["mAP"] <= 100


def test_arguments():
    args = extract_tool.build_parser().parse_intermixed_args(
        ["--config-file", "c.yml", "--images", "a", "b.txt", "--output", "s", "MODEL.DEVICE", "cpu", "--shards", "4"])
    assert args.images == ["a", "b.txt"] and args.shards == 4 and args.opts == ["MODEL.DEVICE", "cpu"]
    with pytest.raises(ValueError, match="--shard-rank 2 must be in"):
        extract_tool.main(["--config-file", "c.yml", "--images", "a", "--output", "s", "--shard-rank", "2",
                           "--shard-world", "2"])


def test_search_index_of_a_store_answers_as_the_gallery_index(setup_files, images, tmp_path):
    search_tool = load_tool("search")
    store = tmp_path / "store"
    extract_tool.main(_args(setup_files, images, store, "--shards", "2", "MODEL.PRECISION", "fp32"))
    config, weights = setup_files
    queries = sorted(str(p) for p in Path(images).rglob("*.jpg"))[:3]
    results = {}
    for name, source in (("store", ["--store", str(store)]),
                         ("gallery", ["--gallery", images, "--config-file", config, "--weights", weights,
                                      "--batch-size", str(BATCH), "MODEL.PRECISION", "fp32"])):
        index_dir = tmp_path / f"index_{name}"
        search_tool.main(["index", "--output", str(index_dir), "--index", "hnsw", *source])  # overrides come last
        search_tool.main(["query", "--index-dir", str(index_dir), "--query", *queries, "--topk", "5"])
        results[name] = json.loads((index_dir / "results.json").read_text())
    meta = json.loads((tmp_path / "index_store" / "meta.json").read_text())
    assert meta["store"] == str(store) and meta["opts"] == ["MODEL.PRECISION", "fp32"] and meta["kind"] == "hnsw"
    assert [[r["path"] for r in q["results"]] for q in results["store"]] == \
        [[r["path"] for r in q["results"]] for q in results["gallery"]]
    for got, want in zip(results["store"], results["gallery"]):
        assert got["results"][0]["path"] == got["query"]  # each query finds itself first
        np.testing.assert_allclose([r["score"] for r in got["results"]], [r["score"] for r in want["results"]],
                                   atol=1e-6)


def test_search_index_needs_a_model_or_a_store(setup_files, images, tmp_path):
    search_tool = load_tool("search")
    with pytest.raises(ValueError, match="--config-file"):
        search_tool.main(["index", "--gallery", images, "--output", str(tmp_path / "i")])
    with pytest.raises(FileNotFoundError, match="not a finished feature store"):
        search_tool.main(["index", "--store", str(tmp_path / "missing"), "--output", str(tmp_path / "i")])
    with pytest.raises(SystemExit):  # one source only
        search_tool.main(["index", "--gallery", images, "--store", str(tmp_path), "--output", str(tmp_path / "i")])
