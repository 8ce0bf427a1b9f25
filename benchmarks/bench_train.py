"""Training and inference throughput on this machine, as images/second, as a ratio to the fp32 NCHW row and as a
fraction of the matmul peak.

    python benchmarks/bench_train.py [--configs A.yml B.yml] [--batch 64] [--iters 3] [--rounds 5] [--threads N]
    python benchmarks/bench_train.py --tiny        # seconds: ResNet-18 at 64x32, batch 8 (development only)

For each config (default: bagtricks R50 at 256x128 and the CPU demo recipe) it times, on random images of the
config's size, a training step (forward, backward, optimizer step) and an inference forward pass for four rows:
fp32 / bf16 autocast x NCHW / channels-last. Each row is its own model built with MODEL.PRECISION and
MODEL.CHANNELS_LAST set from the row (never inherited from the config), and is checked to run in the layout it
names before it is timed. The rows take turns in every round (A B C D, A B C D, ...); a row's figure is the median
over rounds, and its ratio is the median over rounds of the per-round ratio to the fp32 NCHW row.
Achieved FLOP/s counts fvcore's forward MACs x 2 (x 3 for a training step: forward plus about twice that for
backward) and is compared with a square matmul's FLOP/s measured in the same run. Prints the CPU model and flags,
the thread count and the load average, then a markdown table for docs/benchmarks.md.
"""
import argparse
import logging
import statistics
from typing import Callable, Dict, List, NamedTuple, Tuple

import torch

from _common import interleaved_medians, machine_summary, matmul_peak, median_ratio
from fastreid.config import get_cfg
from fastreid.modeling import build_model
from fastreid.modeling.complexity import count_params_and_flops
from fastreid.solver import build_optimizer
from fastreid.utils.precision import autocast_for, precision_from_config

DEFAULT_CONFIGS = ["configs/Market1501/bagtricks_R50.yml", "configs/Synthetic/bagtricks_R18.yml"]
TINY_CONFIG = "configs/Synthetic/bagtricks_R18.yml"
TINY_SIZE = (64, 32)


class Row(NamedTuple):
    precision: str  # a MODEL.PRECISION value
    channels_last: bool

    @property
    def label(self) -> str:
        return f"{self.precision} {'channels-last' if self.channels_last else 'NCHW'}"


ROWS = [Row("fp32", False), Row("fp32", True), Row("bf16", False), Row("bf16", True)]
REFERENCE = ROWS[0]


def row_config(path: str, row: Row, size: Tuple[int, int] = None):
    """The config of ``path`` with the row's precision and layout set explicitly (and random init on the CPU)."""
    cfg = get_cfg()
    cfg.merge_from_file(path)
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", False, "MODEL.HEADS.NUM_CLASSES", 100,
                         "MODEL.PRECISION", row.precision, "MODEL.CHANNELS_LAST", row.channels_last])
    if size is not None:
        cfg.merge_from_list(["INPUT.SIZE_TRAIN", list(size), "INPUT.SIZE_TEST", list(size)])
    return cfg


def _batch(cfg, batch: int) -> Dict[str, torch.Tensor]:
    k = max(1, cfg.DATALOADER.NUM_INSTANCE)
    targets = torch.arange(batch) // k % cfg.MODEL.HEADS.NUM_CLASSES
    # NCHW images, as the data loader gives them: the model's preprocessing puts them in its layout.
    return {"images": torch.rand(batch, 3, *cfg.INPUT.SIZE_TRAIN) * 255, "targets": targets}


def check_layout(model: torch.nn.Module, images: torch.Tensor, row: Row) -> None:
    """Fail unless the model's convolution weights and preprocessed images are in the row's layout."""
    fmt = torch.channels_last if row.channels_last else torch.contiguous_format
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    if not convs or not all(c.weight.is_contiguous(memory_format=fmt) for c in convs):
        raise RuntimeError(f"Row '{row.label}': the model's convolution weights are not in {fmt}")
    if not model.preprocess_image(images[:2]).is_contiguous(memory_format=fmt):
        raise RuntimeError(f"Row '{row.label}': the model feeds its backbone images that are not in {fmt}")


class Case(NamedTuple):
    train_step: Callable[[], None]
    infer: Callable[[], None]
    macs: float


def build_case(path: str, row: Row, batch: int, size: Tuple[int, int] = None) -> Case:
    """One row's model, optimizer and batch, as timed closures (a training step, an inference pass)."""
    cfg = row_config(path, row, size)
    torch.manual_seed(0)
    model = build_model(cfg)
    dtype = precision_from_config(cfg)
    _, macs = count_params_and_flops(model.eval(), tuple(cfg.INPUT.SIZE_TRAIN))
    optimizer = build_optimizer(cfg, model)
    data = _batch(cfg, batch)
    check_layout(model, data["images"], row)

    def train_step():
        model.train()
        with autocast_for(dtype, "cpu"):
            losses = model(data)
        optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        optimizer.step()

    def infer():
        model.eval()
        with torch.no_grad(), autocast_for(dtype, "cpu"):
            model(data["images"])

    return Case(train_step, infer, macs)


def bench_config(path: str, batch: int, iters: int, rounds: int, peaks: Dict[str, float],
                 size: Tuple[int, int] = None) -> List[Dict]:
    """The four rows of one config, timed in interleaved rounds."""
    cases = {row: build_case(path, row, batch, size) for row in ROWS}
    results = {}
    for phase in ("train_step", "infer"):
        per_round = interleaved_medians({row: getattr(case, phase) for row, case in cases.items()},
                                        iters=iters, rounds=rounds)
        results[phase] = {
            row: (statistics.median(per_round[row]), 1.0 / median_ratio(per_round, row, REFERENCE)) for row in ROWS
        }
    rows = []
    for row, case in cases.items():
        (train_s, train_x), (infer_s, infer_x) = results["train_step"][row], results["infer"][row]
        peak = peaks[row.precision]
        rows.append({
            "config": path, "row": row, "train_img_s": batch / train_s, "train_speedup": train_x,
            "infer_img_s": batch / infer_s, "infer_speedup": infer_x,
            "train_peak_frac": 3 * 2 * case.macs * batch / train_s / peak,
            "infer_peak_frac": 2 * case.macs * batch / infer_s / peak,
        })
        logging.info("%s %s: %s", path, row.label, rows[-1])
    return rows


def table(rows: List[Dict]) -> List[str]:
    """Markdown table lines of ``rows``."""
    lines = [
        "| config | precision | channels-last | train img/s | train vs fp32 NCHW | train % of peak | "
        "inference img/s | inference vs fp32 NCHW | inference % of peak |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        row = r["row"]
        lines.append(
            f"| {r['config']} | {row.precision} | {'yes' if row.channels_last else 'no'} | {r['train_img_s']:.1f} | "
            f"{r['train_speedup']:.2f}x | {100 * r['train_peak_frac']:.0f}% | {r['infer_img_s']:.1f} | "
            f"{r['infer_speedup']:.2f}x | {100 * r['infer_peak_frac']:.0f}% |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--iters", type=int, default=3, help="timed calls per row per round (median taken)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median over rounds reported)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--tiny", action="store_true",
                        help=f"development run in seconds: {TINY_CONFIG} at {TINY_SIZE[0]}x{TINY_SIZE[1]}, batch 8, "
                             "1 iteration, 3 rounds (overrides the other size options)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    size, peak_size = None, 4096
    if args.tiny:
        args.configs, args.batch, args.iters, args.rounds = [TINY_CONFIG], 8, 1, 3
        size, peak_size = TINY_SIZE, 512
    peaks = {"fp32": matmul_peak(torch.float32, peak_size), "bf16": matmul_peak(torch.bfloat16, peak_size)}
    before = machine_summary()
    rows = [row for path in args.configs for row in bench_config(path, args.batch, args.iters, args.rounds, peaks,
                                                                   size)]
    lines = [
        f"Before: {before}",
        f"After: {machine_summary()}",
        f"Matmul peak ({peak_size}-square): fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f} "
        f"GFLOP/s; batch {args.batch}, {args.rounds} interleaved rounds of {args.iters} calls per row (medians).",
        "",
        *table(rows),
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
