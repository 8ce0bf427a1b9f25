"""Benchmark of fastreid.evaluation against the reference designs (not a test).

Every stage runs in its own spawned process so that its peak RSS is its own; inputs are
regenerated deterministically in each process (clustered random features: identity
centroids + camera offsets + per-sample noise, L2-normalised, float32).

Usage::

    python benchmarks/bench_eval.py --shapes market            # ~10 min on 2 cores
    python benchmarks/bench_eval.py --shapes msmt --stages distance,rank_cython,evaluate
    python benchmarks/bench_eval.py --stages rank_float64,faiss,evaluate_faiss,evaluate_exact
    python benchmarks/bench_eval.py --shapes market,msmt --stages roc,baseline_roc
    python benchmarks/bench_eval.py --shapes msmt --stages matmul_floor,aqe,evaluate_aqe,rerank,evaluate_rerank

Baselines implemented here:
  (a) ``baseline_rank``: full ``np.argsort`` of the distance matrix, then the per-query
      NumPy loop of the reference Python evaluator (the loop torchreid/fast-reid fall back
      to without Cython); the argsort time is reported separately.
  (b) ``baseline_rerank``: the original dense re-ranking (tests/evaluation/reference.py).
  (c) ``baseline_aqe``: row-by-row AQE (each row's full similarity row, then top-k), the
      previous fastreid implementation.
  (d) ``baseline_roc``: the previous one-piece ROC (a float64 copy of the matrix, every
      negative, one top-k); ``roc`` is the chunked ``evaluate_roc`` on the same float32 matrix.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from _common import clustered_features, peak_rss_gib, reset_peak_rss, run_spawned

ROOT = Path(__file__).resolve().parents[1]
SHAPES = {
    # name: (num_query, num_gallery, num_ids, num_cams)
    "market": (3368, 15913, 751, 6),
    "msmt": (11659, 82161, 3060, 15),
}
DIM = 2048
ALL_STAGES = ("matmul_floor", "distance", "rank_cython", "rank_vectorised", "baseline_rank", "aqe", "baseline_aqe",
              "evaluate", "rerank", "baseline_rerank", "rank_float64", "faiss", "evaluate_faiss",
              "evaluate_exact", "evaluate_aqe", "evaluate_rerank", "roc", "baseline_roc")


def make_features(shape: str, seed: int = 0):
    nq, ng, nids, ncams = SHAPES[shape]
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(nids, DIM, generator=g)
    cams = torch.randn(ncams, DIM, generator=g)

    return clustered_features(nq, centres, cams, g), clustered_features(ng, centres, cams, g)


def _summary(cmc, ap, inp):
    return {"R1": float(cmc[0]), "R10": float(cmc[9]), "mAP": float(np.mean(ap)), "mINP": float(np.mean(inp))}


def baseline_rank_loop(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """Reference design (a): full argsort, then a per-query NumPy loop."""
    t0 = time.perf_counter()
    indices = np.argsort(distmat, axis=1, kind="stable")
    t_sort = time.perf_counter() - t0
    matches = (g_pids[indices] == q_pids[:, None]).astype(np.int32)
    all_cmc, all_ap, all_inp = [], [], []
    for q in range(distmat.shape[0]):
        order = indices[q]
        keep = ~((g_pids[order] == q_pids[q]) & (g_camids[order] == q_camids[q]))
        raw = matches[q][keep]
        if not raw.any():
            continue
        cmc = raw.cumsum()
        last = np.flatnonzero(raw)[-1]
        all_inp.append(cmc[last] / (last + 1.0))
        cmc[cmc > 1] = 1
        all_cmc.append(cmc[:max_rank])
        precision = raw.cumsum() / np.arange(1, len(raw) + 1.0)
        all_ap.append((precision * raw).sum() / raw.sum())
    return np.mean(all_cmc, axis=0), np.array(all_ap), np.array(all_inp), t_sort


def baseline_aqe(query, gallery, qe_k=5, alpha=3.0, chunk=1024):
    """Reference design (c): one AQE round, every row's full similarity row then its top-k."""
    feats = torch.cat([query, gallery])
    norm = torch.nn.functional.normalize(feats, dim=1)
    new = torch.empty_like(feats)
    for s in range(0, len(feats), chunk):
        top_sim, top_idx = (norm[s:s + chunk] @ norm.t()).topk(qe_k, dim=1)
        new[s:s + chunk] = (feats[top_idx] * top_sim.pow(alpha).unsqueeze(-1)).mean(1)
    return new


def baseline_roc(distmat, q_pids, g_pids, q_camids, g_camids, fprs=(1e-4, 1e-3, 1e-2)):
    """Reference design (d): a float64 copy of the whole matrix, every negative, one top-k."""
    dist = torch.as_tensor(distmat).double()
    qp, gp, qc, gc = (torch.as_tensor(x) for x in (q_pids, g_pids, q_camids, g_camids))
    same = qp[:, None] == gp[None, :]
    pos, neg = dist[same & (qc[:, None] != gc[None, :])], dist[~same]
    num_neg = neg.numel()
    neg = neg.topk(int(max(fprs) * num_neg) + 1, largest=False).values.sort().values
    return {f"TPR@FPR={f:.0e}": float((pos < neg[int(f * num_neg)]).double().mean()) for f in fprs}


def run_stage(stage: str, shape: str, queue) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "evaluation"))
    from fastreid.evaluation import (AQEOptions, DenseRanking, ExactRanking, FaissRanking, ReidEvaluator,
                                     RerankOptions, average_query_expansion, compute_distance_matrix, evaluate_rank,
                                     evaluate_rank_faiss, evaluate_roc, re_ranking)

    (qf, qp, qc), (gf, gp, gc) = make_features(shape)
    out = {}
    if stage in ("rank_cython", "rank_vectorised", "baseline_rank", "roc", "baseline_roc"):
        dist = compute_distance_matrix(qf, gf, "cosine").numpy()
    if stage in ("roc", "baseline_roc"):  # peak_rss_gib - rss_before_gib is then the ROC's own memory
        out["peak_reset"] = reset_peak_rss()
    rss0 = peak_rss_gib()
    t0 = time.perf_counter()
    if stage == "matmul_floor":
        a, b = torch.randn(3368, DIM), torch.randn(DIM, 15913)
        for dtype in (torch.float32, torch.bfloat16):
            x, y = a.to(dtype), b.to(dtype)
            x @ y
            t = time.perf_counter()
            for _ in range(3):
                x @ y
            sec = (time.perf_counter() - t) / 3
            out[str(dtype)] = {"sec": sec, "gflops": 2 * 3368 * DIM * 15913 / sec / 1e9}
        # AQE's floor: the full (Q+G)^2 similarity as 1024-row matmuls (results discarded).
        x = torch.cat([qf, gf])
        t = time.perf_counter()
        for s in range(0, len(x), 1024):
            x[s:s + 1024] @ x.t()
        out["qg_square_fp32_sec"] = time.perf_counter() - t
    elif stage == "distance":
        compute_distance_matrix(qf, gf, "cosine")
    elif stage in ("rank_cython", "rank_vectorised"):
        out.update(_summary(*evaluate_rank(dist, qp, gp, qc, gc, use_cython=stage == "rank_cython")))
    elif stage == "baseline_rank":
        cmc, ap, inp, t_sort = baseline_rank_loop(dist, qp, gp, qc, gc)
        out.update(_summary(cmc, ap, inp), argsort_sec=t_sort)
    elif stage in ("roc", "baseline_roc"):
        out.update((evaluate_roc if stage == "roc" else baseline_roc)(dist, qp, gp, qc, gc))
    elif stage == "aqe":
        average_query_expansion(qf, gf, qe_times=1, qe_k=5, alpha=3.0)
    elif stage == "baseline_aqe":
        baseline_aqe(qf, gf, qe_k=5, alpha=3.0)
    elif stage.startswith("evaluate"):
        # evaluate_aqe / evaluate_rerank: TEST.AQE / TEST.RERANK enabled with fast-reid's default settings.
        ranking = {"evaluate_faiss": FaissRanking(), "evaluate_exact": ExactRanking(),
                   "evaluate_rerank": DenseRanking(rerank=RerankOptions(enabled=True))}.get(stage, DenseRanking())
        aqe = AQEOptions(enabled=stage == "evaluate_aqe")
        ev = ReidEvaluator(num_query=len(qp), metric="cosine", ranking=ranking, aqe=aqe)
        feats = torch.cat([qf, gf])
        del qf, gf  # the evaluator's records are the only feature copy, as in a real run
        pids, camids = torch.from_numpy(np.concatenate([qp, gp])), torch.from_numpy(np.concatenate([qc, gc]))
        for s in range(0, len(feats), 256):
            ev.process({"targets": pids[s:s + 256], "camids": camids[s:s + 256]}, feats[s:s + 256])
        t0 = time.perf_counter()  # time evaluate() only
        res = ev.evaluate()
        out.update({"R1": res["Rank-1"] / 100, "mAP": res["mAP"] / 100, "mINP": res["mINP"] / 100})
    elif stage == "rank_float64":
        dist = compute_distance_matrix(qf.double(), gf.double(), "cosine")
        out.update(_summary(*evaluate_rank(dist, qp, gp, qc, gc)))
    elif stage == "faiss":
        *res, num_fallback = evaluate_rank_faiss(qf, gf, qp, gp, qc, gc, "cosine", topk=100,
                                                 return_num_fallback=True)
        out.update(_summary(*res), num_fallback=num_fallback)
    elif stage == "rerank":
        final = re_ranking(qf, gf, "cosine", 20, 6, 0.3)
        out["sec_only"] = time.perf_counter() - t0
        np.save(f"/tmp/bench_rerank_{shape}.npy", final.numpy())
        out.update(_summary(*evaluate_rank(final, qp, gp, qc, gc)))
    elif stage == "baseline_rerank":
        from reference import dense_re_ranking

        d = lambda a, b: compute_distance_matrix(a, b, "cosine").numpy()  # noqa: E731
        final = dense_re_ranking(d(qf, gf), d(qf, qf), d(gf, gf), 20, 6, 0.3)
        out["sec_only"] = time.perf_counter() - t0
        mine = Path(f"/tmp/bench_rerank_{shape}.npy")
        if mine.exists():
            out["max_abs_diff_vs_fastreid"] = float(np.abs(np.load(mine) - final).max())
        out.update(_summary(*evaluate_rank(final, qp, gp, qc, gc)))
    out["sec"] = out.pop("sec_only", time.perf_counter() - t0)
    out["peak_rss_gib"] = peak_rss_gib()
    out["rss_before_gib"] = rss0
    queue.put(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="market", help="comma list of: " + ",".join(SHAPES))
    parser.add_argument("--stages", default=",".join(ALL_STAGES))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for shape in args.shapes.split(","):
        for stage in args.stages.split(","):
            res = run_spawned(run_stage, stage, shape)
            results[f"{shape}/{stage}"] = res
            print(f"{shape:7s} {stage:16s} " + json.dumps(res), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
