"""Benchmark of the approximate gallery indexes of fastreid.search (not a test).

N clustered re-id-like gallery features (``_common.clustered_features``: identity centres, camera offsets and
noise, L2-normalised float32, N / 20 identities) and Q queries drawn the same way. Every index kind runs in its own
spawned process (so its peak RSS is its own; the features are regenerated there from the seed): it builds a
``GalleryIndex`` (IVF kinds train on a seeded sample), then times one batch search of all queries for every
search setting of the sweep. Recall@k is the fraction of the exact (flat) top-k found in the approximate top-k.

Usage::

    python benchmarks/bench_index.py                      # 1M x 512, every kind (HNSW build is the slow part)
    python benchmarks/bench_index.py --n 100000 --kinds flat,ivf,ivfpq
    OMP_NUM_THREADS=2 python benchmarks/bench_index.py --n 300000 --kinds flat,hnsw

Prints a markdown table with the machine line (CPU, flags, threads, load average) and writes JSON with --json.
"""
import argparse
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import torch

from _common import clustered_features, machine_summary

# name: (GalleryIndex kind, build arguments, sweep of search settings). "flat" also writes the exact top-k.
VARIANTS: Dict[str, Tuple[str, Dict[str, Any], List[Dict[str, int]]]] = {
    "flat": ("flat", {}, [{}]),
    "ivf": ("ivf", {}, [{"nprobe": p} for p in (16, 64, 256)]),
    "ivfpq": ("ivfpq", {"pq_m": 64, "pq_nbits": 8}, [{"nprobe": p} for p in (16, 64, 256)]),
    "ivfpq-refine": ("ivfpq", {"pq_m": 64, "pq_nbits": 8, "refine_factor": 10},
                     [{"nprobe": p, "refine_factor": 10} for p in (16, 64, 256)]),
    "hnsw": ("hnsw", {"hnsw_m": 32}, [{"ef_search": e} for e in (64, 128, 256, 512)]),
}
K = 10
CHUNK = 65536  # features are generated in chunks to keep generation temporaries small


def make_features(n: int, num_queries: int, dim: int, seed: int = 0,
                  noise_scale: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """(n, dim) gallery and (num_queries, dim) query features, deterministic in ``seed``."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(max(1, n // 20), dim, generator=g)
    cams = torch.randn(15, dim, generator=g)

    def sample(count: int) -> np.ndarray:
        out = np.empty((count, dim), np.float32)
        for start in range(0, count, CHUNK):
            stop = min(count, start + CHUNK)
            out[start:stop] = clustered_features(stop - start, centres, cams, g, noise_scale)[0].numpy()
        return out

    return sample(n), sample(num_queries)


def _rss_gib(peak: bool) -> float:
    if peak:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**30


def _recall(found: np.ndarray, exact: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(f[:k]) & set(e[:k])) / k for f, e in zip(found, exact)]))


def run_variant(name: str, args: argparse.Namespace, truth_file: str) -> List[Dict[str, Any]]:
    """Builds one index variant and measures every search setting of its sweep (in a child process)."""
    from fastreid.evaluation.faiss_index import import_faiss, set_search_params
    from fastreid.search import GalleryIndex

    faiss = import_faiss()
    gallery, queries = make_features(args.n, args.queries, args.dim, args.seed, args.noise)
    features_gib = _rss_gib(peak=False)
    kind, build_args, sweep = VARIANTS[name]
    start = time.perf_counter()
    index = GalleryIndex.build(gallery, [""] * len(gallery), kind=kind, **build_args)
    build_s = time.perf_counter() - start
    size = len(faiss.serialize_index(index.index))
    rows = []
    for setting in sweep:
        set_search_params(index.index, **setting)
        index.search(queries[:10], K)  # warm-up
        start = time.perf_counter()
        _, found = index.search(queries, K)
        search_s = time.perf_counter() - start
        if name == "flat":
            np.save(truth_file, found)
        exact = np.load(truth_file)
        rows.append({"variant": name, "setting": " ".join(f"{k}={v}" for k, v in setting.items()) or "exact",
                     "build_s": build_s, "size_mib": size / 2**20, "trained_on": index.meta["trained_on"],
                     "nlist": index.meta["nlist"] if kind.startswith("ivf") else None,
                     "ms_per_query": 1000 * search_s / len(queries), "recall@1": _recall(found, exact, 1),
                     "recall@10": _recall(found, exact, K), "features_gib": features_gib,
                     "peak_rss_gib": _rss_gib(peak=True), "threads": faiss.omp_get_max_threads()})
    return rows


def _child(name: str, args: argparse.Namespace, truth_file: str, queue) -> None:
    queue.put(run_variant(name, args, truth_file))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="gallery size")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--kinds", default=",".join(VARIANTS),
                        help=f"comma-separated subset of {','.join(VARIANTS)} (flat always runs: exact results)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=1.0,
                        help="noise scale of the features (1: as bench_eval; below 1: tighter identity clusters)")
    parser.add_argument("--json", default="", help="also write the rows here")
    args = parser.parse_args()
    names = [k for k in args.kinds.split(",") if k]
    unknown = set(names) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown --kinds {sorted(unknown)}; choose from {','.join(VARIANTS)}")
    names = ["flat"] + [k for k in names if k != "flat"]
    ctx = mp.get_context("spawn")
    rows: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        truth_file = str(Path(tmp) / "exact.npy")
        for name in names:
            queue = ctx.Queue()
            proc = ctx.Process(target=_child, args=(name, args, truth_file, queue))
            proc.start()
            result = queue.get()
            proc.join()
            rows += result
            for row in result:
                print(json.dumps(row), file=sys.stderr, flush=True)
    flat_ms = rows[0]["ms_per_query"]
    print(f"\nN={args.n} x {args.dim}-d gallery, {args.queries} queries, k={K}, seed {args.seed}, "
          f"noise scale {args.noise}")
    print(machine_summary())
    print("\n| index | search setting | build s | trained on | index MiB | ms / query | vs flat | recall@1 | "
          "recall@10 | peak RSS GiB (features) | faiss threads |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        nlist = f", nlist={r['nlist']}" if r["nlist"] else ""
        print(f"| {r['variant']} | {r['setting']}{nlist} | {r['build_s']:.1f} | {r['trained_on'] or '-'} | "
              f"{r['size_mib']:.0f} | {r['ms_per_query']:.3f} | {r['ms_per_query'] / flat_ms:.3f} | "
              f"{r['recall@1']:.3f} | {r['recall@10']:.3f} | {r['peak_rss_gib']:.2f} ({r['features_gib']:.2f}) | "
              f"{r['threads']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
