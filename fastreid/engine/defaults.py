"""Command-line entry points shared by the tools: argument parsing, config loading and run set-up."""
import argparse
import logging
import os
from typing import Optional

import torch

from fastreid.config import CfgNode, add_config_arguments, config_overrides, load_config
from fastreid.utils import comm
from fastreid.utils.env import collect_env_info, resolve_device, seed_all_rng
from fastreid.utils.file_io import PathManager, atomic_write
from fastreid.utils.logger import setup_logger

__all__ = ["default_argument_parser", "default_setup", "save_config", "setup_cfg"]


def default_argument_parser(description: Optional[str] = None) -> argparse.ArgumentParser:
    """The argument parser shared by fastreid's tools.

    Flags: ``--config-file``, ``--resume``, ``--eval-only``, ``--num-gpus`` (processes per machine; on CPU it
    counts CPU processes), ``--num-machines``, ``--machine-rank``, ``--dist-url``; everything after the flags is
    a list of ``KEY VALUE`` config overrides (``--config-file`` and the overrides come from
    :func:`fastreid.config.add_config_arguments`).
    """
    parser = argparse.ArgumentParser(
        description=description or "fastreid training and evaluation",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Examples:\n"
            "  Train:     tools/train_net.py --config-file configs/Market1501/bagtricks_R50.yml\n"
            "  Resume:    tools/train_net.py --config-file cfg.yml --resume\n"
            "  Evaluate:  tools/train_net.py --config-file cfg.yml --eval-only MODEL.WEIGHTS model.pth\n"
            "  Overrides: tools/train_net.py --config-file cfg.yml SOLVER.BASE_LR 0.001 MODEL.DEVICE cpu\n"
        ),
    )
    add_config_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in OUTPUT_DIR")
    parser.add_argument("--eval-only", action="store_true", help="evaluate MODEL.WEIGHTS and exit")
    parser.add_argument("--num-gpus", type=int, default=1, help="processes per machine (GPUs, or CPU processes)")
    parser.add_argument("--num-machines", type=int, default=1, help="total number of machines")
    parser.add_argument("--machine-rank", type=int, default=0, help="rank of this machine (0 .. num-machines-1)")
    parser.add_argument(
        "--dist-url",
        default="auto",
        help="URL of the rendezvous, e.g. tcp://10.0.0.1:29500; 'auto' picks a free local port (one machine only)",
    )
    parser.add_argument(
        "--dist-timeout", type=float, default=None, metavar="SECONDS",
        help="longest wait of a rank in one collective before the job fails (default 600 = 10 minutes)",
    )
    return parser


def setup_cfg(args: argparse.Namespace, cfg: Optional[CfgNode] = None) -> CfgNode:
    """Build the run's config: ``cfg`` (default: ``get_cfg()``; a project passes it with its own keys added),
    then ``args.config_file``, then ``args.opts``; frozen (see :func:`fastreid.config.load_config`)."""
    return load_config(args.config_file, config_overrides(args), base=cfg)


def default_setup(cfg: CfgNode, args: argparse.Namespace) -> None:
    """Prepare a run: output folder, loggers, environment report, config dump, seed and device checks.

    The full config is written to ``OUTPUT_DIR/config.yaml`` by the main process (atomically); it reloads to
    an equal tree.

    Raises:
        ValueError: when ``MODEL.DEVICE`` names a device this machine does not have.
        NotADirectoryError: when OUTPUT_DIR, or a folder it would be created in, is an existing file (checked
            on every rank, so that no rank goes on without the others).
    """
    output_dir = cfg.OUTPUT_DIR
    rank = comm.get_rank()
    # The first existing path of OUTPUT_DIR and its parents must be a folder (local paths only).
    existing = os.path.abspath(output_dir) if output_dir and "://" not in output_dir else ""
    while existing and not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if existing and not os.path.isdir(existing):
        raise NotADirectoryError(
            f"OUTPUT_DIR '{output_dir}' cannot be created: '{existing}' is a file, not a folder. Set OUTPUT_DIR to "
            "a path inside a folder (e.g. OUTPUT_DIR logs/my_run), or move that file away."
        )
    if comm.is_main_process() and output_dir:
        PathManager.mkdirs(output_dir)

    setup_logger(output_dir, distributed_rank=rank, name="fvcore")
    logger = setup_logger(output_dir, distributed_rank=rank, name="fastreid")

    logger.info("Rank of current process: %d. World size: %d", rank, comm.get_world_size())
    logger.info("Environment info:\n%s", collect_env_info())
    logger.info("Command line arguments: %s", args)
    config_file = getattr(args, "config_file", "")
    if config_file:
        with PathManager.open(config_file, "r") as f:
            logger.info("Contents of args.config_file=%s:\n%s", config_file, f.read())

    logger.info("Running with full config:\n%s", cfg.dump())
    resolve_device(cfg.MODEL.DEVICE)

    if comm.is_main_process() and output_dir:
        path = os.path.join(output_dir, "config.yaml")
        save_config(cfg, path)
        logger.info("Full config saved to %s", os.path.abspath(path))

    seed = seed_all_rng(None if cfg.SEED < 0 else cfg.SEED + rank)
    logger.info("Random seed of this process: %d", seed)

    if cfg.DETERMINISTIC:
        # cuBLAS needs a fixed workspace for deterministic results; it must be set before the first CUDA call.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif not getattr(args, "eval_only", False):
        torch.backends.cudnn.benchmark = cfg.CUDNN_BENCHMARK


def save_config(cfg: CfgNode, path: str) -> None:
    """Write ``cfg`` as YAML to ``path`` atomically (a temp file renamed into place)."""
    atomic_write(path, lambda f: f.write(cfg.dump().encode()))
