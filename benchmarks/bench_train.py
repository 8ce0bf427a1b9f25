"""Training and inference throughput on this machine, as images/second and as a fraction of the matmul peak.

    python benchmarks/bench_train.py [--configs A.yml B.yml] [--iters 5] [--batch 64]

For each config (default: bagtricks R50 at 256x128 and the CPU demo recipe) it times, on random images of
the config's size, a training step (forward, backward, optimizer step) and an inference forward pass, in
fp32 and in bfloat16 autocast, with and without channels-last memory format. Achieved FLOP/s counts fvcore's
forward MACs x 2 (x 3 for a training step: forward plus about twice that for backward) and is compared with
a square matmul's FLOP/s measured in the same run. Prints a markdown table for docs/benchmarks.md.
"""
import argparse
import itertools
import logging
import time
from typing import Dict, List, Optional

import torch

from fastreid.config import get_cfg
from fastreid.modeling import build_model
from fastreid.modeling.complexity import count_params_and_flops
from fastreid.solver import build_optimizer

DEFAULT_CONFIGS = ["configs/Market1501/bagtricks_R50.yml", "configs/Synthetic/bagtricks_R18.yml"]


def matmul_peak(dtype: torch.dtype, size: int = 4096, reps: int = 5) -> float:
    """Best FLOP/s of a ``size``-square matmul in ``dtype``."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def _batch(cfg, batch: int, size, num_classes: int) -> Dict[str, torch.Tensor]:
    k = max(1, cfg.DATALOADER.NUM_INSTANCE)
    targets = torch.arange(batch) // k % num_classes
    return {"images": torch.rand(batch, 3, *size) * 255, "targets": targets}


def _time(fn, iters: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def bench_config(path: str, batch: int, iters: int, peaks: Dict[str, float]) -> List[Dict]:
    cfg = get_cfg()
    cfg.merge_from_file(path)
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", "False", "MODEL.HEADS.NUM_CLASSES", "100"])
    size = tuple(cfg.INPUT.SIZE_TRAIN)
    rows = []
    for precision, channels_last in itertools.product(["fp32", "bf16"], [False, True]):
        torch.manual_seed(0)
        model = build_model(cfg)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        _, macs = count_params_and_flops(model.eval(), size)
        optimizer = build_optimizer(cfg, model)
        data = _batch(cfg, batch, size, cfg.MODEL.HEADS.NUM_CLASSES)
        if channels_last:
            data["images"] = data["images"].contiguous(memory_format=torch.channels_last)
        dtype: Optional[torch.dtype] = torch.bfloat16 if precision == "bf16" else None

        def train_step():
            model.train()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
                losses = model(data)
            optimizer.zero_grad(set_to_none=True)
            sum(losses.values()).backward()
            optimizer.step()

        def infer():
            model.eval()
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
                model(data["images"])

        train_s, infer_s = _time(train_step, iters), _time(infer, iters)
        peak = peaks[precision]
        rows.append({
            "config": path, "precision": precision, "channels_last": channels_last,
            "train_img_s": batch / train_s, "infer_img_s": batch / infer_s,
            "train_peak_frac": 3 * 2 * macs * batch / train_s / peak,
            "infer_peak_frac": 2 * macs * batch / infer_s / peak,
        })
        logging.info("%s", rows[-1])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--iters", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    logging.info("matmul peak: fp32 %.0f GFLOP/s, bf16 %.0f GFLOP/s (threads: %d)",
                 peaks["fp32"] / 1e9, peaks["bf16"] / 1e9, torch.get_num_threads())
    rows = [row for path in args.configs for row in bench_config(path, args.batch, args.iters, peaks)]
    lines = [
        f"Matmul peak: fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s; "
        f"batch {args.batch}, {torch.get_num_threads()} threads.",
        "",
        "| config | precision | channels-last | train img/s | train % of peak | inference img/s | inference % of peak |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['config']} | {r['precision']} | {'yes' if r['channels_last'] else 'no'} | {r['train_img_s']:.1f} | "
            f"{100 * r['train_peak_frac']:.0f}% | {r['infer_img_s']:.1f} | {100 * r['infer_peak_frac']:.0f}% |"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
