#!/usr/bin/env python
"""Export a trained fastreid model to TorchScript by tracing (0-255 images in, features out).

    python tools/deploy/torchscript_export.py --config-file configs/Market1501/bagtricks_R50.yml \
        --name baseline_R50 --output ts_model MODEL.WEIGHTS logs/market1501/bagtricks_R50/model_final.pth

writes ``ts_model/baseline_R50.pt`` for INPUT.SIZE_TEST; load it with ``torch.jit.load``.
"""
import argparse
import sys
from typing import Optional, Sequence

import torch

from fastreid.export import export_torchscript
from fastreid.export.cli import export_argument_parser, run_export


def get_parser() -> argparse.ArgumentParser:
    return export_argument_parser("TorchScript", ".pt", "ts_model")


def main(argv: Optional[Sequence[str]] = None) -> str:
    """Run the export; returns the path of the ``.pt`` file."""
    def export(model, path, input_size, batch_size):
        traced = export_torchscript(model, path, input_size=input_size, batch_size=batch_size)
        return lambda images: traced(torch.from_numpy(images)).numpy()

    return run_export(get_parser().parse_args(argv), export, "TorchScript", ".pt")


if __name__ == "__main__":
    main(sys.argv[1:])
