#!/usr/bin/env python
"""The `make demo` job: train and evaluate a re-id model on the synthetic person dataset, on this machine.

    python tools/demo.py [--config-file configs/Synthetic/bagtricks_R18.yml] [--resume] [KEY VALUE ...]

Generates the SyntheticPerson dataset if it is absent, trains the CPU recipe for a few minutes, evaluates it,
writes rank lists of the worst / best / random queries, and ends with the results, the chance level and where
every output is. Takes the same flags and overrides as tools/train_net.py.
"""
import logging
import os
import subprocess
import sys

import numpy as np

from fastreid.data import build_test_set
from fastreid.engine import DefaultTrainer, default_argument_parser, default_setup, setup_cfg
from fastreid.evaluation import evaluate_rank

DEFAULT_CONFIG = "configs/Synthetic/bagtricks_R18.yml"
logger = logging.getLogger("fastreid.demo")


def chance_map(cfg, dataset_name: str, draws: int = 5) -> float:
    """mAP (%) of random rankings under the evaluation protocol: what a model that learned nothing scores."""
    test_set, num_query = build_test_set(cfg, dataset_name)
    pids, camids = np.asarray(test_set.pids), np.asarray(test_set.camids)
    rng = np.random.default_rng(0)
    scores = []
    for _ in range(draws):
        dist = rng.random((num_query, len(pids) - num_query), dtype=np.float32)
        _, ap, _ = evaluate_rank(dist, pids[:num_query], pids[num_query:], camids[:num_query], camids[num_query:])
        scores.append(100 * float(np.mean(ap)))
    return float(np.mean(scores))


def main() -> None:
    args = default_argument_parser(__doc__).parse_args()
    args.config_file = args.config_file or DEFAULT_CONFIG
    cfg = setup_cfg(args)
    default_setup(cfg, args)

    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    results = trainer.train()
    output_dir = os.path.abspath(cfg.OUTPUT_DIR)
    dataset_name = cfg.DATASETS.TESTS[0]

    weights = os.path.join(output_dir, "model_final.pth")
    subprocess.run(
        [sys.executable, os.path.join(os.path.dirname(__file__), "visualize_result.py"),
         "--config-file", args.config_file, "--num-vis", "5", "--output", os.path.join(output_dir, "visualize"),
         *(args.opts or []), "MODEL.WEIGHTS", weights],
        check=True,
    )

    metrics = results[dataset_name]
    logger.info(
        "Demo finished. %s: mAP %.1f%%, Rank-1 %.1f%% (random ranking: mAP %.1f%%).\n"
        "Outputs in %s:\n"
        "  log.txt, metrics.json           training log and one JSON line of metrics per logging period\n"
        "  events.out.tfevents.*           tensorboard: tensorboard --logdir %s\n"
        "  model_final.pth, model_best.pth checkpoints (last_checkpoint names the one --resume continues from)\n"
        "  config.yaml                     the full config of the run\n"
        "  visualize/rank_lists/           rank lists of the worst, best and random queries\n"
        "  visualize/*.png                 distance histogram and ROC of positive vs negative pairs",
        dataset_name, metrics["mAP"], metrics["Rank-1"], chance_map(trainer.cfg, dataset_name),
        output_dir, output_dir,
    )


if __name__ == "__main__":
    main()
