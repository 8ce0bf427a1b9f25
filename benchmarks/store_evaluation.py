"""Peak memory and time of evaluating feature stores chunk by chunk vs in memory (not a test).

Writes a query and a gallery store of re-id-like synthetic features (``--shape market|msmt|tiny``, or
``--num-query/--num-gallery``), then evaluates them in two fresh processes each:

* ``store``: :func:`fastreid.evaluation.store_evaluation.evaluate_stores` (memory maps, row chunks),
* ``memory``: the features read whole into :class:`~fastreid.evaluation.ReidEvaluator` (dense ranking).

and prints one JSON line per run: seconds, peak RSS (``ru_maxrss``) and the metrics (which must agree).
The store run's RSS includes the pages of the memory maps it touched: clean file pages, which the kernel drops
under memory pressure, so on a machine with less free memory than the features the store run still fits.

Usage::

    python benchmarks/store_evaluation.py --shape tiny            # seconds: a smoke run
    python benchmarks/store_evaluation.py --shape msmt --dim 2048  # the claim: run on a quiet machine
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import clustered_features, machine_summary, peak_rss_gib, write_feature_store
from fastreid.evaluation import ReidEvaluator
from fastreid.evaluation.feature_store import FeatureStore
from fastreid.evaluation.store_evaluation import evaluate_stores

SHAPES = {"tiny": (200, 1000, 50, 4), "market": (3368, 15913, 751, 6), "msmt": (11659, 82161, 3060, 15)}
WRITE_BATCH = 4096


def run_child(mode: str, root: str) -> None:
    query, gallery = FeatureStore.open(f"{root}/query"), FeatureStore.open(f"{root}/gallery")
    start = time.perf_counter()
    if mode == "store":
        results = evaluate_stores(query, gallery)
    else:
        evaluator = ReidEvaluator(num_query=len(query))
        feats = np.concatenate([query.rows(0, len(query)), gallery.rows(0, len(gallery))])
        evaluator.process({"targets": np.concatenate([query.pids, gallery.pids]),
                           "camids": np.concatenate([query.camids, gallery.camids])}, torch.from_numpy(feats))
        results = evaluator.evaluate()
    seconds = time.perf_counter() - start
    print(json.dumps({"mode": mode, "seconds": round(seconds, 3),
                      "peak_rss_mib": int(peak_rss_gib() * 1024), **results}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(*args.child)
    nq, ng, nids, ncams = SHAPES[args.shape]
    g = torch.Generator().manual_seed(0)
    centres, cams = torch.randn(nids, args.dim, generator=g), torch.randn(ncams, args.dim, generator=g)
    print(machine_summary())
    with tempfile.TemporaryDirectory() as root:
        for name, n in (("query", nq), ("gallery", ng)):
            feats, pids, camids = clustered_features(n, centres, cams, g)
            write_feature_store(f"{root}/{name}", feats, pids, camids, args.shards, WRITE_BATCH)
        for mode in ("store", "memory"):
            subprocess.run([sys.executable, str(Path(__file__)), "--child", mode, root], check=True)


if __name__ == "__main__":
    main()
