"""Benchmark of the approximate gallery indexes of fastreid.search (not a test).

N re-id-like gallery features (identity centres, camera offsets and within-identity variation, L2-normalised
float32, N / 20 identities, 15 cameras) and Q queries drawn the same way: by default ``_common.spectral_features``,
whose variation follows a power-law spectrum fitted to a trained model's features (``benchmarks/feature_structure.py``);
``--features isotropic`` draws bench_eval's isotropic-noise features instead. Every index kind runs in its own
spawned process (so its peak RSS is its own; the features are regenerated there from the seed): it builds a
``GalleryIndex`` (IVF kinds train on a seeded sample), then times one batch search of all queries for every
search setting of the sweep. Recall@k is the fraction of the exact (flat) top-k found in the approximate top-k.

Usage::

    python benchmarks/bench_index.py                      # 1M x 512, every kind (HNSW build is the slow part)
    python benchmarks/bench_index.py --n 100000 --kinds flat,ivf,ivfpq
    python benchmarks/bench_index.py --n 200000 --features isotropic --kinds flat,ivf,hnsw
    OMP_NUM_THREADS=2 python benchmarks/bench_index.py --n 300000 --kinds flat,hnsw

Prints a markdown table with the machine line (CPU, flags, threads, load average) and writes JSON with --json.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from _common import (DEFAULT_NOISE, clustered_features, machine_summary, market_shape_accuracy, peak_rss_gib, rss_gib,
                     run_spawned, spectral_features, spectral_world)

# name: (GalleryIndex kind, build arguments, sweep of search settings). "flat" also writes the exact top-k.
VARIANTS: Dict[str, Tuple[str, Dict[str, Any], List[Dict[str, int]]]] = {
    "flat": ("flat", {}, [{}]),
    "ivf": ("ivf", {}, [{"nprobe": p} for p in (4, 8, 16, 32, 64, 128)]),
    "ivfpq": ("ivfpq", {"pq_m": 64, "pq_nbits": 8}, [{"nprobe": p} for p in (16, 64, 256)]),
    "ivfpq-refine": ("ivfpq", {"pq_m": 64, "pq_nbits": 8, "refine_factor": 10},
                     [{"nprobe": p, "refine_factor": 10} for p in (8, 16, 32, 64)]),
    "hnsw": ("hnsw", {"hnsw_m": 32}, [{"ef_search": e} for e in (16, 32, 64, 96, 128, 256)]),
}
K = 10
CHUNK = 65536  # features are generated in chunks to keep generation temporaries small


def make_features(n: int, num_queries: int, dim: int, seed: int = 0, noise_scale: Optional[float] = None,
                  features: str = "spectral") -> Tuple[np.ndarray, np.ndarray]:
    """(n, dim) gallery and (num_queries, dim) query features of ``features`` kind, deterministic in ``seed``."""
    g = torch.Generator().manual_seed(seed)
    noise = DEFAULT_NOISE[features] if noise_scale is None else noise_scale
    if features == "spectral":
        world = spectral_world(max(1, n // 20), 15, dim, g)
        draw = lambda count: spectral_features(count, world, g, noise)[0]  # noqa: E731
    else:
        centres = torch.randn(max(1, n // 20), dim, generator=g)
        cams = torch.randn(15, dim, generator=g)
        draw = lambda count: clustered_features(count, centres, cams, g, noise)[0]  # noqa: E731

    def sample(count: int) -> np.ndarray:
        out = np.empty((count, dim), np.float32)
        for start in range(0, count, CHUNK):
            stop = min(count, start + CHUNK)
            out[start:stop] = draw(stop - start).numpy()
        return out

    return sample(n), sample(num_queries)


def _recall(found: np.ndarray, exact: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(f[:k]) & set(e[:k])) / k for f, e in zip(found, exact)]))


def run_variant(name: str, args: argparse.Namespace, truth_file: str) -> List[Dict[str, Any]]:
    """Builds one index variant and measures every search setting of its sweep (in a child process)."""
    from fastreid.evaluation.faiss_index import import_faiss, set_search_params
    from fastreid.search import GalleryIndex

    faiss = import_faiss()
    gallery, queries = make_features(args.n, args.queries, args.dim, args.seed, args.noise, args.features)
    features_gib = rss_gib()
    kind, build_args, sweep = VARIANTS[name]
    start = time.perf_counter()
    index = GalleryIndex.build(gallery, [""] * len(gallery), kind=kind, **build_args)
    build_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:  # the file's size, without a serialised copy in this process' RSS
        index.save(tmp)
        size = os.path.getsize(os.path.join(tmp, "index.faiss"))
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
                     "peak_rss_gib": peak_rss_gib(), "threads": faiss.omp_get_max_threads()})
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
    parser.add_argument("--features", choices=tuple(DEFAULT_NOISE), default="spectral",
                        help="feature generator (see DEFAULT_NOISE)")
    parser.add_argument("--noise", type=float, default=None,
                        help="noise scale of the features (default: the generator's, as separable at 512-d as "
                             "bench_eval's 2048-d features; lower: tighter identity clusters)")
    parser.add_argument("--json", default="", help="also write the rows here")
    args = parser.parse_args()
    names = [k for k in args.kinds.split(",") if k]
    unknown = set(names) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown --kinds {sorted(unknown)}; choose from {','.join(VARIANTS)}")
    names = ["flat"] + [k for k in names if k != "flat"]
    rows: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        truth_file = str(Path(tmp) / "exact.npy")
        for name in names:
            result = run_spawned(_child, name, args, truth_file)
            rows += result
            for row in result:
                print(json.dumps(row), file=sys.stderr, flush=True)
    flat_ms = rows[0]["ms_per_query"]
    noise = DEFAULT_NOISE[args.features] if args.noise is None else args.noise
    print(f"\nN={args.n} x {args.dim}-d gallery, {args.queries} queries, k={K}, seed {args.seed}, "
          f"{args.features} features, noise scale {noise}")
    acc = market_shape_accuracy(args.dim, noise, args.seed, spectral=args.features == "spectral")
    print(f"These {args.dim}-d features at Market-1501 shape (3368 x 15913, 751 ids): R1 {100 * acc['R1']:.1f} %, "
          f"mAP {100 * acc['mAP']:.1f} %, mINP {100 * acc['mINP']:.1f} %")
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
