"""Memory of indexing a feature store in chunks against indexing the same features held in memory (not a test).

Writes N spectral features (``bench_index.make_features``) as a sharded store, then builds the same index twice,
each in its own spawned process: ``GalleryIndex.build_from_store`` (the store read a chunk at a time) and
``GalleryIndex.build`` on the whole array read from the store. It reports each build's time and its peak
anonymous memory (``RssAnon`` sampled every 50 ms): the process' own allocations, without the store's page cache
and memory-mapped file pages, which the kernel can drop at will. Both indexes must answer the queries
identically.

Usage::

    python benchmarks/bench_store_index.py                         # 1M x 512, IVF-PQ 64 x 8 bit
    python benchmarks/bench_store_index.py --n 200000 --kind hnsw
"""
import argparse
import multiprocessing as mp
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from _common import machine_summary
from bench_index import make_features


def _rss_anon_gib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


class PeakSampler:
    """Largest RssAnon seen by a background thread while the ``with`` block runs."""

    def __enter__(self) -> "PeakSampler":
        self.peak, self._stop = _rss_anon_gib(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, _rss_anon_gib())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_anon_gib())


def write_store(folder: str, n: int, dim: int) -> np.ndarray:
    """The store of n gallery features; returns the queries."""
    from fastreid.evaluation.feature_store import ShardPlan, extract_shards, finalize_store

    gallery, queries = make_features(n, 200, dim)
    paths = [f"g{i:07d}.jpg" for i in range(n)]
    row = {p: i for i, p in enumerate(paths)}
    plan = ShardPlan.aligned(n, 8, 1024)
    labels = np.zeros(n, np.int64)
    extract_shards(folder, plan, "bench", range(plan.num_shards), lambda ps: gallery[[row[p] for p in ps]], 1024,
                   paths, labels, labels)
    finalize_store(folder, plan, "bench", {"metric": "cosine"})
    return queries


def build(mode: str, folder: str, kind: str, queries: np.ndarray, queue) -> None:
    from fastreid.evaluation.feature_store import FeatureStore
    from fastreid.search import GalleryIndex

    options = {"kind": kind, "pq_m": 64, "pq_nbits": 8}
    store = FeatureStore.open(folder)
    with PeakSampler() as sampler:
        start = time.perf_counter()
        if mode == "store":
            index = GalleryIndex.build_from_store(store, **options)
        else:
            index = GalleryIndex.build(store.rows(0, len(store)), store.paths, metric="cosine", **options)
        seconds = time.perf_counter() - start
    queue.put({"mode": mode, "seconds": seconds, "peak_rss_anon_gib": sampler.peak,
               "results": index.search(queries, 10)[1]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--kind", default="ivfpq", choices=("flat", "ivf", "ivfpq", "hnsw"))
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        folder = str(Path(tmp) / "store")
        queries = write_store(folder, args.n, args.dim)
        rows = []
        for mode in ("store", "memory"):
            queue = ctx.Queue()
            proc = ctx.Process(target=build, args=(mode, folder, args.kind, queries, queue))
            proc.start()
            rows.append(queue.get())
            proc.join()
    same = np.array_equal(rows[0].pop("results"), rows[1].pop("results"))
    print(f"\n{args.kind} index of {args.n} x {args.dim}-d features ({args.n * args.dim * 4 / 2**30:.2f} GiB); "
          f"identical results: {same}")
    print(machine_summary())
    print("\n| built from | build s | peak RssAnon GiB |\n|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['seconds']:.1f} | {r['peak_rss_anon_gib']:.2f} |")


if __name__ == "__main__":
    main()
