"""Peak inference memory of video re-id on a MARS-shaped test set, per TEST.FRAME_CHUNK (not a test).

The test set has MARS's shape: 1980 query and 9330 gallery tracklets whose lengths are drawn (seeded) around
``--frames`` (60) frames, with the first query ``--max-frames`` (920, MARS's longest) long, so every run meets
the worst case. Frames are random 256x128 images generated on the fly by a
``Dataset`` (no files). Sample method is "all": one tracklet per batch with every frame, which
:class:`~fastreid.modeling.meta_arch.VideoBaseline` runs through its backbone FRAME_CHUNK frames at a time
(0 = all at once). Features go into :class:`~fastreid.evaluation.ReidEvaluator`, which then evaluates; so the
figure is the whole test's peak. The model is ``--config``'s (default: the ResNet-18 BoT of
configs/Synthetic/video_avg.yml) at 256x128, randomly initialised, fp32, on the CPU.

Each FRAME_CHUNK runs in its own spawned process, so its peak RSS (``ru_maxrss``) is its own. The loader runs in
the main process (0 workers), so frames and activations count in that one RSS.

Usage::

    python benchmarks/video_inference_memory.py                              # full shape: hours on 2 cores
    python benchmarks/video_inference_memory.py --num-query 4 --num-gallery 12 --chunks 0 512 256 128 64 32
    python benchmarks/video_inference_memory.py --chunks 128 --opts MODEL.BACKBONE.NAME build_mobilenetv3_backbone \
        MODEL.BACKBONE.DEPTH Small   # full shape, a small real backbone: about an hour on 2 idle cores
    python benchmarks/video_inference_memory.py --chunks 128 --opts MODEL.BACKBONE.NAME build_probe_backbone
        # full shape in minutes: what grows with the number of tracklets, with a one-layer backbone

``--opts KEY VALUE ...`` overrides the config, as the trailing pairs of tools/train_net.py do.

With fewer tracklets the peak is the same (it is set by the longest tracklet, which every run includes) except
for the stored features and frame names, which grow linearly: the script reports their full-shape size.
"""
import argparse
import json
import logging
import multiprocessing as mp
import platform
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from _common import peak_rss_gib
from fastreid.config import get_cfg
from fastreid.data import collate_tracklets
from fastreid.evaluation import ReidEvaluator, inference_on_dataset
from fastreid.modeling import build_model
from fastreid.modeling.backbones import BACKBONE_REGISTRY

ROOT = Path(__file__).resolve().parents[1]
MARS_QUERY, MARS_GALLERY, MARS_IDS, MARS_CAMS = 1980, 9330, 636, 6
GIB = 2**30


class ProbeBackbone(nn.Module):
    """8x8 average pooling, a 1x1 convolution to 64 channels, BN and ReLU: a backbone so cheap that a full
    MARS-shaped pass takes minutes, for measuring what grows with the number of tracklets (loader, collected
    features, evaluation) rather than the activations of a real network."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.AvgPool2d(8), nn.Conv2d(3, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        self.out_channels = 64

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@BACKBONE_REGISTRY.register()
def build_probe_backbone(cfg) -> nn.Module:
    """:class:`ProbeBackbone` (MODEL.BACKBONE.NAME build_probe_backbone); reads no other key."""
    return ProbeBackbone()


def tracklet_lengths(count: int, mean: int, longest: int, seed: int, with_longest: bool = True) -> np.ndarray:
    """Seeded lengths: exponential around ``mean`` (at least 2, at most ``longest``); the first one ``longest``
    when ``with_longest``."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.round(rng.exponential(mean - 2, count)) + 2, 2, longest).astype(int)
    if with_longest and count:
        lengths[0] = longest
    return lengths


class RandomTracklets(Dataset):
    """Tracklets of random 0-255 frames, as :class:`~fastreid.data.TrackletDataset` samples with method "all".

    Each tracklet is a fresh float tensor, as a decoded tracklet would be; its frames are drawn from a seeded
    bank of ``bank_size`` random frames (generating ~680 k full-size random frames would cost more than the
    inference being measured, and memory does not depend on the pixel values).

    Args:
        lengths: frames of each tracklet.
        pids, camids: labels of each tracklet.
        height, width: frame size.
        bank_size: distinct random frames.
    """

    def __init__(self, lengths: np.ndarray, pids: np.ndarray, camids: np.ndarray, height: int, width: int,
                 bank_size: int = 97) -> None:
        self.lengths, self.pids, self.camids = lengths, pids, camids
        self.height, self.width = height, width
        g = torch.Generator().manual_seed(0)
        self.bank = torch.randint(0, 256, (bank_size, 3, height, width), generator=g, dtype=torch.uint8)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        n = int(self.lengths[index])
        frames = self.bank[(torch.arange(n) + index * 31) % len(self.bank)].float()
        return {"images": frames, "targets": int(self.pids[index]), "camids": int(self.camids[index]),
                "img_paths": tuple(f"t{index}_f{i}.jpg" for i in range(n)), "indices": index}


def test_set(num_query: int, num_gallery: int, frames: int, max_frames: int, height: int, width: int):
    """Query followed by gallery tracklets, and the number of queries."""
    q_len = tracklet_lengths(num_query, frames, max_frames, seed=1)
    g_len = tracklet_lengths(num_gallery, frames, max_frames, seed=2, with_longest=False)
    rng = np.random.default_rng(3)
    q_pids = rng.integers(0, MARS_IDS, num_query)
    g_pids = np.concatenate([q_pids, rng.integers(0, MARS_IDS, max(0, num_gallery - num_query))])[:num_gallery]
    q_cams = rng.integers(0, MARS_CAMS, num_query)
    g_cams = (np.concatenate([q_cams, rng.integers(0, MARS_CAMS, max(0, num_gallery - num_query))])[:num_gallery]
              + 1) % MARS_CAMS  # every query's identity in another camera of the gallery
    data = RandomTracklets(np.concatenate([q_len, g_len]), np.concatenate([q_pids, g_pids]),
                           np.concatenate([q_cams, g_cams]), height, width)
    return data, num_query


def run_chunk(args: Dict[str, Any], chunk: int, queue) -> None:
    """One FRAME_CHUNK setting in this (spawned) process; puts its figures on ``queue``."""
    torch.set_num_threads(args["threads"])
    logging.basicConfig(level=logging.WARNING)
    cfg = get_cfg()
    cfg.merge_from_file(args["config"])
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", False, "MODEL.HEADS.NUM_CLASSES", 625,
                         "MODEL.META_ARCHITECTURE", "VideoBaseline", "TEST.FRAME_CHUNK", chunk,
                         "INPUT.SIZE_TEST", [args["height"], args["width"]]] + args["opts"])
    model = build_model(cfg).eval()
    data, num_query = test_set(args["num_query"], args["num_gallery"], args["frames"], args["max_frames"],
                               args["height"], args["width"])
    loader = DataLoader(data, batch_size=1, num_workers=0, collate_fn=collate_tracklets)
    rss_before = peak_rss_gib()
    start = time.perf_counter()
    results = inference_on_dataset(model, loader, ReidEvaluator(num_query, metric=cfg.TEST.METRIC))
    elapsed = time.perf_counter() - start
    queue.put({
        "frame_chunk": chunk, "peak_rss_gib": peak_rss_gib(),
        "rss_before_gib": rss_before, "seconds": elapsed, "tracklets": len(data), "frames": int(data.lengths.sum()),
        "frames_per_s": float(data.lengths.sum() / elapsed), "mAP": results.get("mAP"),
        "feat_dim": int(cfg.MODEL.BACKBONE.FEAT_DIM),
    })


def machine() -> Dict[str, str]:
    """CPU model and its bf16 / AMX / AVX-512 flags, torch version, cores."""
    info = {"python": platform.python_version(), "torch": torch.__version__, "cores": str(mp.cpu_count())}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
        flags = next(line.split(":", 1)[1].split() for line in cpuinfo if line.startswith("flags"))
        info["flags"] = " ".join(f for f in flags if "bf16" in f or f.startswith("amx") or f == "avx512f")
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    try:
        info["load_average"] = Path("/proc/loadavg").read_text().strip()
    except OSError:
        pass
    return info


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs" / "Synthetic" / "video_avg.yml"))
    parser.add_argument("--num-query", type=int, default=MARS_QUERY)
    parser.add_argument("--num-gallery", type=int, default=MARS_GALLERY)
    parser.add_argument("--frames", type=int, default=60, help="mean tracklet length")
    parser.add_argument("--max-frames", type=int, default=920, help="length of the longest tracklets")
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--chunks", type=int, nargs="+", default=[0, 512, 256, 128, 64, 32])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budget-gib", type=float, default=4.0)
    parser.add_argument("--output", default="", help="also write the figures to this JSON file")
    parser.add_argument("--opts", nargs="+", default=[], help="KEY VALUE config overrides, as in tools/train_net.py")
    args = parser.parse_args(argv)
    settings = dict(vars(args))
    ctx = mp.get_context("spawn")
    rows = []
    for chunk in args.chunks:
        queue = ctx.Queue()
        proc = ctx.Process(target=run_chunk, args=(settings, chunk, queue))
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            rows.append({"frame_chunk": chunk, "error": f"exit code {proc.exitcode} (killed: out of memory?)"})
        else:
            rows.append(queue.get())
        print(json.dumps(rows[-1]), flush=True)
    full = MARS_QUERY + MARS_GALLERY
    dim = next((r["feat_dim"] for r in rows if "feat_dim" in r), 512)
    ok = [r["frame_chunk"] for r in rows if "peak_rss_gib" in r and r["peak_rss_gib"] < args.budget_gib]
    report = {
        "machine": machine(), "settings": settings, "rows": rows,
        "full_shape_feature_store_gib": full * dim * 4 / GIB,
        f"chunks_under_{args.budget_gib:g}_gib": ok,
        "largest_chunk_under_budget": max((c for c in ok if c > 0), default=None) if ok else None,
    }
    print(json.dumps(report, indent=1))
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=1))
    print("\n| TEST.FRAME_CHUNK | peak RSS (GiB) | before inference (GiB) | frames/s |\n|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['frame_chunk']} | {r['error']} | | |")
        else:
            print(f"| {r['frame_chunk'] or 'all frames'} | {r['peak_rss_gib']:.2f} | {r['rss_before_gib']:.2f} | "
                  f"{r['frames_per_s']:.1f} |")


if __name__ == "__main__":
    sys.exit(main())
