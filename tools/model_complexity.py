#!/usr/bin/env python
"""Print parameters, FLOPs (fvcore: one fused multiply-add = one flop, i.e. MACs) and CPU latency of a model.

Examples:
  tools/model_complexity.py --config-file configs/Market1501/bagtricks_R50.yml
  tools/model_complexity.py --config-file configs/Market1501/sbs_R50.yml --input-size 256 128 \
      MODEL.BACKBONE.LAST_STRIDE 2
"""
import argparse
import logging
import sys
from typing import Optional, Sequence

import torch
from tabulate import tabulate

from fastreid.config import add_config_arguments, config_overrides, load_config
from fastreid.modeling import build_model
from fastreid.modeling.complexity import count_params, count_params_and_flops, measure_latency


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), help="default: INPUT.SIZE_TEST")
    parser.add_argument("--iters", type=int, default=10, help="timed forward passes per measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency measurements")
    return add_config_arguments(parser, required=True, multiple=True)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = []
    for path in args.config_file:
        # Weights and the class count do not change the cost of an eval-mode forward pass.
        cfg = load_config(path, ["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", False] + config_overrides(args))
        size = tuple(args.input_size or cfg.INPUT.SIZE_TEST)
        model = build_model(cfg).eval()
        params, flops = count_params_and_flops(model, size)
        row = [path, f"{size[0]}x{size[1]}", f"{count_params(model.backbone) / 1e6:.2f}", f"{params / 1e6:.2f}",
               f"{flops / 1e9:.2f}"]
        if not args.no_latency:
            fp32 = measure_latency(model, size, iters=args.iters)
            bf16 = measure_latency(model, size, iters=args.iters, autocast_dtype=torch.bfloat16)
            row += [f"{fp32 * 1e3:.1f}", f"{bf16 * 1e3:.1f}"]
        rows.append(row)
    headers = ["config", "input", "backbone params (M)", "model params (M)", "GFLOPs (=GMACs)"]
    if not args.no_latency:
        headers += ["CPU ms fp32 (batch 1)", "CPU ms bf16 autocast"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; model params exclude the classifier "
          f"(MODEL.HEADS.NUM_CLASSES {cfg.MODEL.HEADS.NUM_CLASSES})")
    print(tabulate(rows, headers=headers, tablefmt="github"))


if __name__ == "__main__":
    main(sys.argv[1:])
