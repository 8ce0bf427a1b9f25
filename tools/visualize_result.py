#!/usr/bin/env python
"""Look at what a trained model gets right and wrong on a test set.

    python tools/visualize_result.py --config-file CFG MODEL.WEIGHTS model.pth \
        [--num-vis 10] [--rank-sort ascending|descending|random|all] [--vis-label] [--max-rank 10] [--output DIR]

For DATASETS.TESTS[0] (or ``--dataset-name``) it extracts features as the evaluator does (TEST.FLIP_ENABLED,
TEST.METRIC) and writes into ``--output`` (default ``OUTPUT_DIR/visualize_result``):

* ``rank_lists/<worst|best|random>/*.png``: ``--num-vis`` queries with their ``--max-rank`` first gallery
  results (green border: same identity, red: different), drawn by :mod:`fastreid.evaluation.visualizer`.
  ``--rank-sort ascending`` shows the lowest-AP queries ("worst"), ``descending`` the highest ("best"),
  ``random`` a random sample and ``all`` (default) the three. Ranking protocol as in evaluation: same-identity
  same-camera gallery items are left out.
* with ``--vis-label``, ``rank_lists/<selection>/labels.csv``: for every drawn tile the query, rank, gallery
  image, identities, cameras, distance and whether it matches.
* ``distance_histogram.png``: distances of positive (same identity, different camera) and negative
  (different identity) query-gallery pairs.
* ``roc.png``: verification ROC over the same pairs (accept a pair when its distance <= threshold).
"""
import argparse
import csv
import logging
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from matplotlib.figure import Figure  # a bare Figure renders with Agg; no pyplot backend state

from fastreid.config import config_overrides
from fastreid.data import build_reid_test_loader
from fastreid.evaluation import FeatureCollector, RankAccumulator, compute_distance_matrix, inference_on_dataset
from fastreid.evaluation.visualizer import ranked_gallery, select_queries, visualize_ranked_results
from fastreid.predictor import inference_argument_parser, load_inference_config, load_model
from fastreid.utils.logger import setup_logger
from fastreid.utils.precision import precision_from_config

logger = logging.getLogger("fastreid.visualize_result")

_TILE_HEIGHT = 128  # pixels; rank-list tiles keep the test aspect ratio
SELECTIONS = {"ascending": ("worst",), "descending": ("best",), "random": ("random",),
              "all": ("worst", "best", "random")}


def pair_distances(dist: np.ndarray, q_pids, g_pids, q_camids, g_camids) -> Tuple[np.ndarray, np.ndarray]:
    """Distances of positive (same id, other camera) and negative (other id) pairs of a (Q, G) matrix."""
    same = np.asarray(q_pids)[:, None] == np.asarray(g_pids)[None, :]
    other_cam = np.asarray(q_camids)[:, None] != np.asarray(g_camids)[None, :]
    return dist[same & other_cam], dist[~same]


def roc_curve(pos: np.ndarray, neg: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC of "accept when distance <= t" over every distinct distance ``t``.

    Returns:
        (fpr, tpr, thresholds), thresholds ascending, starting from (0, 0) at t = -inf.
    """
    dist = np.concatenate([pos, neg])
    is_pos = np.concatenate([np.ones(len(pos), bool), np.zeros(len(neg), bool)])
    order = np.argsort(dist, kind="stable")
    dist, is_pos = dist[order], is_pos[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(dist)), len(dist) - 1]  # ties are accepted together
    tp, fp = np.cumsum(is_pos)[last_of_value], np.cumsum(~is_pos)[last_of_value]
    fpr = np.r_[0.0, fp / max(len(neg), 1)]
    tpr = np.r_[0.0, tp / max(len(pos), 1)]
    return fpr, tpr, np.r_[-np.inf, dist[last_of_value]]


def plot_distance_histogram(pos: np.ndarray, neg: np.ndarray, path: str, metric: str) -> None:
    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.subplots()
    bins = np.linspace(min(pos.min(initial=np.inf), neg.min()), max(pos.max(initial=-np.inf), neg.max()), 51)
    ax.hist(neg, bins=bins, density=True, alpha=0.5, color="tab:red", label=f"negative pairs ({len(neg)})")
    if len(pos):
        ax.hist(pos, bins=bins, density=True, alpha=0.5, color="tab:green", label=f"positive pairs ({len(pos)})")
    ax.set_xlabel(f"{metric} distance")
    ax.set_ylabel("density")
    ax.set_title("Query-gallery distances")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def plot_roc(fpr: np.ndarray, tpr: np.ndarray, path: str) -> float:
    """Plots the ROC (log FPR axis) and returns its area."""
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    fig = Figure(figsize=(5, 4), dpi=100)
    ax = fig.subplots()
    ax.plot(fpr, tpr, color="tab:blue", label=f"AUC = {auc:.4f}")
    ax.set_xscale("log")
    positive_fpr = fpr[fpr > 0]
    ax.set_xlim(positive_fpr.min() if len(positive_fpr) else 1e-4, 1.0)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("Verification ROC (query-gallery pairs)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    return auc


def write_labels(path: str, queries: Sequence[int], dist: np.ndarray, ap: np.ndarray, data: Dict, num_query: int,
                 max_rank: int) -> None:
    """CSV of the tiles of the drawn rank lists, in the visualiser's order (distance, then gallery index).

    A tracklet (a tuple of frame paths) is written as the folder of its first frame."""
    pids, camids = data["pids"].numpy(), data["camids"].numpy()
    paths = [p if isinstance(p, str) else os.path.dirname(p[0]) for p in data["img_paths"]]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["query", "query_pid", "query_camid", "query_ap", "rank", "gallery", "gallery_pid",
                         "gallery_camid", "distance", "match"])
        for q in queries:
            shown = ranked_gallery(dist[q], pids[q], camids[q], pids[num_query:], camids[num_query:], max_rank)
            for rank, g in enumerate(shown, start=1):
                gi = num_query + g
                writer.writerow([paths[q], pids[q], camids[q], f"{ap[q]:.4f}", rank, paths[gi], pids[gi],
                                 camids[gi], f"{dist[q, g]:.6f}", int(pids[gi] == pids[q])])


def visualize(cfg, dataset_name: str, output: str, num_vis: int, rank_sort: str, vis_label: bool,
              max_rank: int) -> Dict[str, object]:
    """Writes the figures described in the module docstring; returns the written paths and the ROC AUC."""
    model = load_model(cfg)
    loader, num_query = build_reid_test_loader(cfg, dataset_name=dataset_name)
    data = inference_on_dataset(model, loader, FeatureCollector(), flip_test=cfg.TEST.FLIP_ENABLED,
                                precision=precision_from_config(cfg))
    feats, pids, camids, paths = data["feats"], data["pids"].numpy(), data["camids"].numpy(), data["img_paths"]
    dist = compute_distance_matrix(feats[:num_query], feats[num_query:], cfg.TEST.METRIC).numpy()
    q_pids, g_pids, q_camids, g_camids = pids[:num_query], pids[num_query:], camids[:num_query], camids[num_query:]

    ranker = RankAccumulator(q_pids, g_pids, q_camids, g_camids)
    ranker.add(dist, 0)
    ap, valid = ranker.stats.ap, ranker.stats.num_pos > 0
    logger.info("%s: mAP %.2f%% over %d valid queries", dataset_name, 100 * ap[valid].mean(), valid.sum())

    written: Dict[str, object] = {"rank_lists": {}}
    height, width = cfg.INPUT.SIZE_TEST
    tile = (max(1, round(_TILE_HEIGHT * width / height)), _TILE_HEIGHT)
    for selection in SELECTIONS[rank_sort]:
        folder = os.path.join(output, "rank_lists", selection)
        queries = select_queries(ap, valid, selection, num_vis)
        written["rank_lists"][selection] = visualize_ranked_results(
            dist, q_pids, g_pids, q_camids, g_camids, paths[:num_query], paths[num_query:], folder,
            topk=max_rank, queries=queries, image_size=tile)
        if vis_label:
            write_labels(os.path.join(folder, "labels.csv"), queries, dist, ap, data, num_query, max_rank)

    pos, neg = pair_distances(dist, q_pids, g_pids, q_camids, g_camids)
    written["histogram"] = os.path.join(output, "distance_histogram.png")
    plot_distance_histogram(pos, neg, written["histogram"], cfg.TEST.METRIC)
    written["roc"] = os.path.join(output, "roc.png")
    written["auc"] = plot_roc(*roc_curve(pos, neg)[:2], written["roc"])
    logger.info("Wrote rank lists (%s), %s and %s (ROC AUC %.4f) to %s", ", ".join(SELECTIONS[rank_sort]),
                os.path.basename(written["histogram"]), os.path.basename(written["roc"]), written["auc"], output)
    return written


def get_parser() -> argparse.ArgumentParser:
    """The tool's arguments; parse with ``parse_intermixed_args`` (overrides may stand among the flags)."""
    parser = inference_argument_parser(__doc__)
    parser.add_argument("--dataset-name", default="", help="test set to visualise (default DATASETS.TESTS[0])")
    parser.add_argument("--output", default="", help="output folder (default OUTPUT_DIR/visualize_result)")
    parser.add_argument("--num-vis", type=int, default=10, help="queries per selection")
    parser.add_argument("--rank-sort", choices=sorted(SELECTIONS), default="all",
                        help="ascending: lowest AP first (worst); descending: best; random; all: the three")
    parser.add_argument("--vis-label", action="store_true", help="also write labels.csv next to the rank lists")
    parser.add_argument("--max-rank", type=int, default=10, help="gallery results per rank list")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, object]:
    args = get_parser().parse_intermixed_args(argv)
    setup_logger(name="fastreid")
    cfg = load_inference_config(args.config_file, opts=config_overrides(args))
    output = args.output or os.path.join(cfg.OUTPUT_DIR, "visualize_result")
    return visualize(cfg, args.dataset_name or cfg.DATASETS.TESTS[0], output, args.num_vis, args.rank_sort,
                     args.vis_label, args.max_rank)


if __name__ == "__main__":
    main(sys.argv[1:])
