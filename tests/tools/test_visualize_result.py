import csv
import os

import numpy as np
import pytest
import torch
from PIL import Image
from tool_loading import load_tool

visualize_result = load_tool("visualize_result")


def test_roc_curve_matches_brute_force():
    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 6, 30).astype(float), rng.integers(3, 10, 50).astype(float)  # many ties
    fpr, tpr, thr = visualize_result.roc_curve(pos, neg)
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    np.testing.assert_array_equal(thr[1:], np.unique(np.r_[pos, neg]))
    for f, t, d in zip(fpr[1:], tpr[1:], thr[1:]):
        assert f == pytest.approx(np.mean(neg <= d)) and t == pytest.approx(np.mean(pos <= d))


def test_pairs_and_query_selection():
    dist = np.arange(12, dtype=float).reshape(3, 4)
    pos, neg = visualize_result.pair_distances(dist, [1, 2, 3], [1, 1, 2, 4], [0, 0, 0], [0, 1, 1, 1])
    np.testing.assert_array_equal(pos, [1, 6])  # (q0, g1) and (q1, g2); (q0, g0) is same id same camera
    np.testing.assert_array_equal(neg, [2, 3, 4, 5, 7, 8, 9, 10, 11])
    ap, valid = np.array([0.5, 0.1, 0.9, 0.0]), np.array([True, True, True, False])
    assert visualize_result.select_queries(ap, valid, "worst", 2) == [1, 0]
    assert visualize_result.select_queries(ap, valid, "best", 2) == [2, 0]
    assert sorted(visualize_result.select_queries(ap, valid, "random", 5)) == [0, 1, 2]


def test_writes_rank_lists_histogram_and_roc(cfg, setup_files, tmp_path):
    config_file, weights = setup_files
    out = tmp_path / "vis"
    written = visualize_result.main(["--config-file", config_file, "MODEL.WEIGHTS", weights, "--num-vis", "2",
                                     "--max-rank", "3", "--vis-label", "--output", str(out)])
    for selection in ("worst", "best", "random"):
        files = written["rank_lists"][selection]
        assert len(files) == 2 and all(os.path.dirname(f) == str(out / "rank_lists" / selection) for f in files)
        width, height = Image.open(files[0]).size
        assert height > 128 and width > 4 * 64  # query + 3 results at 128 px height
        rows = list(csv.DictReader(open(out / "rank_lists" / selection / "labels.csv")))
        assert len(rows) == 2 * 3 and all(r["match"] == str(int(r["query_pid"] == r["gallery_pid"])) for r in rows)
        # ranked by distance, and the same identity in the same camera is never shown
        for q in {r["query"] for r in rows}:
            shown = [r for r in rows if r["query"] == q]
            assert [float(r["distance"]) for r in shown] == sorted(float(r["distance"]) for r in shown)
            assert not any(r["query_pid"] == r["gallery_pid"] and r["query_camid"] == r["gallery_camid"]
                           for r in shown)
    aps = [float(r["query_ap"]) for r in csv.DictReader(open(out / "rank_lists" / "worst" / "labels.csv"))]
    best = [float(r["query_ap"]) for r in csv.DictReader(open(out / "rank_lists" / "best" / "labels.csv"))]
    assert max(aps) <= min(best)
    for name in ("distance_histogram.png", "roc.png"):
        image = Image.open(out / name)
        assert image.size[0] >= 400 and np.asarray(image.convert("L")).std() > 5  # a drawn plot, not blank
    assert 0.0 <= written["auc"] <= 1.0


def test_labels_name_a_tracklet_by_its_folder(tmp_path):
    data = {"pids": torch.tensor([1, 1, 2]), "camids": torch.tensor([0, 1, 1]),
            "img_paths": [("q/t1/f1.jpg", "q/t1/f2.jpg"), ("g/t2/f1.jpg",), ("g/t3/f1.jpg", "g/t3/f2.jpg")]}
    dist = np.array([[0.1, 0.5]])
    out = tmp_path / "labels.csv"
    visualize_result.write_labels(str(out), [0], dist, np.array([1.0]), data, num_query=1, max_rank=2)
    rows = out.read_text().splitlines()
    assert rows[1].startswith("q/t1,1,0,") and ",g/t2,1,1," in rows[1] and ",g/t3,2,1," in rows[2]
