"""Images per second through the training loader (decode + bagtricks augmentation) at 256x128.

Usage: python benchmarks/bench_data.py [--workers 0 1 2] [--batches 15]
Generates a SyntheticPerson set at 256x128 into a temporary folder (removed afterwards).
"""
import argparse
import itertools
import tempfile
import time

from fastreid.config import get_cfg
from fastreid.data import build_reid_train_loader


def bench(root: str, workers: int, batches: int) -> float:
    cfg = get_cfg()
    cfg.merge_from_list([
        "DATASETS.ROOT", root, "DATASETS.NAMES", ("SyntheticPerson",),
        "DATASETS.SYNTHETIC.NUM_IDS", 64, "DATASETS.SYNTHETIC.IMAGES_PER_ID", 10,
        "DATASETS.SYNTHETIC.HEIGHT", 256, "DATASETS.SYNTHETIC.WIDTH", 128,
        # bagtricks: resize 256x128, flip, pad 10 + random crop, random erasing; P x K = 16 x 4.
        "INPUT.SIZE_TRAIN", [256, 128], "INPUT.REA.ENABLED", True, "SOLVER.IMS_PER_BATCH", 64,
        "DATALOADER.NUM_INSTANCE", 4, "DATALOADER.NUM_WORKERS", workers, "MODEL.DEVICE", "cpu",
    ])
    it = iter(build_reid_train_loader(cfg, seed=0))
    next(it)  # worker start-up and first batch are not counted
    start = time.perf_counter()
    for batch in itertools.islice(it, batches):
        assert batch["images"].shape == (64, 3, 256, 128)
    return batches * 64 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batches", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        for workers in args.workers:
            print(f"NUM_WORKERS={workers}: {bench(root, workers, args.batches):.0f} images/s")


if __name__ == "__main__":
    main()
