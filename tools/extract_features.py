#!/usr/bin/env python
r"""Extract the features of a large image list on N processes (or machines) into a sharded feature store.

::

    python tools/extract_features.py --config-file CFG --images crops/ more.jpg --output store \
        [--shards 8] [--batch-size 64] [--num-gpus 2 --num-machines 1 --machine-rank 0 --dist-url auto] \
        [KEY VALUE ...]
    # evaluate a query store against a gallery store, reading both in chunks:
    python tools/extract_features.py evaluate --query store_q --gallery store_g [--metric cosine]

``--images`` takes image files, folders (searched recursively, sorted) and list files (``.txt``, one
``path [pid camid]`` a line, paths relative to the list file). Identities and cameras come from the list file
or, for images named ``<pid>_c<cam>...`` (Market-1501 style), from the name; otherwise they are -1.

The list is cut into ``--shards`` shards (default: the world size, N × M) at multiples of the batch size; shard
i is extracted by rank i % world size and written atomically (see :mod:`fastreid.evaluation.feature_store`).
The rank that finishes last (finding every shard complete) writes ``manifest.json``. After a kill, re-run the same command: complete
shards are kept (after checking their fingerprint: model weights, config, image list, batch size and shard
plan), missing and partial ones are redone. Without ``torch.distributed`` (several independent jobs on one
shared folder), give each job ``--shard-rank r --shard-world w``; again the last one writes the manifest. A job
that finds another live process writing one of its shards stops with an error naming it rather than touch it.

Bit-for-bit equality with a single-process extraction: every batch holds the same images as in one extraction
of the whole list with the same batch size, because shard boundaries are multiples of it. That gives identical
features with deterministic kernels and the same precision (MODEL.PRECISION; use fp32 across machines with
different CPUs, as "auto" may pick bfloat16 on some) and the same thread count where a kernel's reduction
order depends on it.
"""
import argparse
import hashlib
import json
import logging
import os
import re
import sys
from typing import List, Optional, Sequence, Tuple

import numpy as np

from fastreid.config import CfgNode, add_config_arguments, config_overrides
from fastreid.data.datasets.custom import labels_from_name
from fastreid.engine.launch import launch_from_args
from fastreid.evaluation.feature_store import FeatureStore, ShardPlan, extract_shards, finalize_store
from fastreid.evaluation.store_evaluation import evaluate_stores
from fastreid.predictor import FeatureExtractor, load_inference_config
from fastreid.search import list_images
from fastreid.utils import comm
from fastreid.utils.logger import setup_logger
from fastreid.utils.precision import precision_name

logger = logging.getLogger("fastreid.extract_features")

_LIST_SUFFIX = ".txt"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", nargs="+", required=True, help="image files, folders and .txt list files")
    parser.add_argument("--output", required=True, help="the store folder")
    parser.add_argument("--weights", default="", metavar="FILE", help="trained weights (default MODEL.WEIGHTS)")
    parser.add_argument("--shards", type=int, default=0, help="number of shards (default: the world size)")
    parser.add_argument("--batch-size", type=int, default=0, help="images per forward (default TEST.IMS_PER_BATCH)")
    parser.add_argument("--normalize", action="store_true", help="store L2-normalised features")
    parser.add_argument("--shard-rank", type=int, default=None, help="this job's rank without torch.distributed")
    parser.add_argument("--shard-world", type=int, default=None, help="number of jobs without torch.distributed")
    parser.add_argument("--num-gpus", type=int, default=1, help="processes per machine (GPUs, or CPU processes)")
    parser.add_argument("--num-machines", type=int, default=1, help="total number of machines")
    parser.add_argument("--machine-rank", type=int, default=0, help="rank of this machine")
    parser.add_argument("--dist-url", default="auto", help='init method, e.g. tcp://host:port ("auto": local)')
    return add_config_arguments(parser, required=True, intermixed=True)


def build_eval_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Rank-k / mAP of a query store against a gallery store")
    parser.add_argument("--query", required=True, help="query store folder")
    parser.add_argument("--gallery", required=True, help="gallery store folder")
    parser.add_argument("--metric", choices=("cosine", "euclidean"), default="cosine")
    parser.add_argument("--ignore-camid", action="store_true", help="keep same-camera matches of the query id")
    return parser


def _labels_from_name(path: str) -> Tuple[int, int]:
    return labels_from_name(path) or (-1, -1)


def _read_list_file(path: str) -> List[Tuple[str, int, int]]:
    base, records = os.path.dirname(os.path.abspath(path)), []
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            if len(parts) not in (1, 3) or (len(parts) == 3 and not all(re.fullmatch(r"-?\d+", p) for p in parts[1:])):
                raise ValueError(f"{path}:{line_no}: expected 'path' or 'path pid camid' (integers), got {line!r}")
            image = os.path.join(base, parts[0])
            records.append((image, int(parts[1]), int(parts[2])) if len(parts) == 3
                           else (image, *_labels_from_name(image)))
    return records


def read_images(inputs: Sequence[str]) -> Tuple[List[str], np.ndarray, np.ndarray]:
    """(N,) image paths, pids and camids of ``--images`` (files, folders, ``.txt`` lists), in a stable order."""
    records = []
    for item in inputs:
        if item.endswith(_LIST_SUFFIX) and os.path.isfile(item):
            records += _read_list_file(item)
        else:
            records += [(p, *_labels_from_name(p)) for p in list_images([item])]
    if not records:
        raise FileNotFoundError(f"No images listed in {list(inputs)}")
    paths, pids, camids = zip(*records)
    return list(paths), np.array(pids, np.int64), np.array(camids, np.int64)


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(cfg: CfgNode, paths: Sequence[str], batch_size: int, normalize: bool, plan: ShardPlan) -> str:
    """Hash of what determines the features: config, weights content, image list, batching and the shard plan."""
    weights = _file_sha256(cfg.MODEL.WEIGHTS) if os.path.isfile(cfg.MODEL.WEIGHTS) else cfg.MODEL.WEIGHTS
    parts = [cfg.dump(), weights, json.dumps(list(paths)), batch_size, normalize, plan.shard_rows]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


class Job:
    """Everything every rank derives identically from the arguments: config, inputs, plan, fingerprint."""

    def __init__(self, args: argparse.Namespace, world_size: int) -> None:
        self.cfg = load_inference_config(args.config_file, args.weights, config_overrides(args))
        self.batch_size = args.batch_size or self.cfg.TEST.IMS_PER_BATCH
        self.normalize = args.normalize
        self.paths, self.pids, self.camids = read_images(args.images)
        self.plan = ShardPlan.aligned(len(self.paths), args.shards or world_size, self.batch_size)
        self.fingerprint = fingerprint(self.cfg, self.paths, self.batch_size, self.normalize, self.plan)
        self.output = args.output

    def meta(self, extractor: FeatureExtractor) -> dict:
        weights = self.cfg.MODEL.WEIGHTS
        return {"config": self.cfg.dump(), "weights": os.path.abspath(weights) if weights else "",
                "batch_size": self.batch_size, "normalize": self.normalize, "flip": extractor.flip,
                "precision": precision_name(extractor.precision), "metric": self.cfg.TEST.METRIC}

    def run_rank(self, rank: int, world_size: int) -> FeatureExtractor:
        """Extracts the shards of ``rank`` (shard i belongs to rank i % world_size) that are not complete."""
        extractor = FeatureExtractor.from_config(self.cfg, batch_size=self.batch_size, normalize=self.normalize)
        mine = range(rank, self.plan.num_shards, world_size)
        logger.info("Rank %d/%d: %d images, %d shards in all, shards %s here", rank, world_size, len(self.paths),
                    self.plan.num_shards, list(mine))
        extract_shards(self.output, self.plan, self.fingerprint, mine, lambda p: extractor(list(p)).numpy(),
                       self.batch_size, self.paths, self.pids, self.camids)
        return extractor

    def finalize(self, extractor: FeatureExtractor) -> bool:
        return finalize_store(self.output, self.plan, self.fingerprint, self.meta(extractor))


def run_extraction(args: argparse.Namespace) -> bool:
    """The per-process body: this rank's shards, then the manifest if every shard is there.

    No barrier: a rank that finishes early would wait in it, and a collective times out (10 minutes by default)
    long before a large extraction ends. The last rank to finish finds every shard and writes the manifest.
    Returns whether the store is finished.
    """
    if args.shard_world is not None:
        rank, world = args.shard_rank, args.shard_world
    else:
        rank, world = comm.get_rank(), comm.get_world_size()
    job = Job(args, world)
    return job.finalize(job.run_rank(rank, world))


def run_evaluation(argv: Sequence[str]) -> dict:
    args = build_eval_parser().parse_args(argv)
    results = evaluate_stores(FeatureStore.open(args.query), FeatureStore.open(args.gallery), args.metric,
                              ignore_camid=args.ignore_camid)
    print(json.dumps(results, indent=1))
    return results


def main(argv: Optional[Sequence[str]] = None):
    argv = list(sys.argv[1:] if argv is None else argv)
    setup_logger(name="fastreid")
    if argv[:1] == ["evaluate"]:
        return run_evaluation(argv[1:])
    args = build_parser().parse_intermixed_args(argv)
    if (args.shard_rank is None) != (args.shard_world is None):
        raise ValueError("Give both --shard-rank and --shard-world (independent jobs), or neither.")
    if args.shard_world is not None and not 0 <= args.shard_rank < args.shard_world:
        raise ValueError(f"--shard-rank {args.shard_rank} must be in [0, --shard-world {args.shard_world})")
    launch_from_args(run_extraction, args)


if __name__ == "__main__":
    main()
