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
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import PeakSampler, machine_summary, run_spawned, write_feature_store
from bench_index import make_features


def write_store(folder: str, n: int, dim: int) -> np.ndarray:
    """The store of n gallery features; returns the queries."""
    gallery, queries = make_features(n, 200, dim)
    labels = np.zeros(n, np.int64)
    write_feature_store(folder, gallery, labels, labels, 8, 1024, {"metric": "cosine"}, fingerprint="bench",
                        path_format="g{:07d}.jpg")
    return queries


def build(mode: str, folder: str, kind: str, queries: np.ndarray, queue) -> None:
    from fastreid.evaluation.feature_store import FeatureStore
    from fastreid.search import GalleryIndex

    store = FeatureStore.open(folder)
    pq_m = next(m for m in (64, 32, 16, 8, 4, 2, 1) if store.dim % m == 0)  # 64 x 8 bit where D allows
    options = {"kind": kind, "pq_m": pq_m, "pq_nbits": 8}
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
    with tempfile.TemporaryDirectory() as tmp:
        folder = str(Path(tmp) / "store")
        queries = write_store(folder, args.n, args.dim)
        rows = []
        for mode in ("store", "memory"):
            rows.append(run_spawned(build, mode, folder, args.kind, queries))
    same = np.array_equal(rows[0].pop("results"), rows[1].pop("results"))
    print(f"\n{args.kind} index of {args.n} x {args.dim}-d features ({args.n * args.dim * 4 / 2**30:.2f} GiB); "
          f"identical results: {same}")
    print(machine_summary())
    print("\n| built from | build s | peak RssAnon GiB |\n|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['seconds']:.1f} | {r['peak_rss_anon_gib']:.2f} |")


if __name__ == "__main__":
    main()
