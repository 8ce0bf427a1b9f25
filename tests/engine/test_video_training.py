"""The video configs: every ``configs/**/video*`` and video recipe merges, and the synthetic video config trains
and evaluates through ``tools/train_net.py`` (``DefaultTrainer.run``) on a tiny SyntheticTracklets set."""
import json
from pathlib import Path

import pytest
import torch

from fastreid.config import get_cfg
from fastreid.data.datasets.synthetic_tracklets import tracklet_params, tracklet_plan
from fastreid.modeling.temporal_pool import TEMPORAL_POOL_REGISTRY
from tests.tools.tool_loading import load_tool

REPO = Path(__file__).resolve().parents[2]
SYNTHETIC_VIDEO = sorted((REPO / "configs" / "Synthetic").glob("video_*.yml"))
RECIPES = [REPO / "configs" / d / "bagtricks_R50.yml" for d in ("MARS", "DukeMTMCVidReID", "iLIDSVID", "PRID2011")]


def _cfg(path):
    cfg = get_cfg()
    cfg.merge_from_file(str(path))
    return cfg


@pytest.mark.parametrize("path", SYNTHETIC_VIDEO + RECIPES + [REPO / "configs/MARS/bagtricks_R50_attention.yml"],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_video_configs_merge_into_a_video_model(path):
    cfg = _cfg(path)
    assert cfg.MODEL.META_ARCHITECTURE == "VideoBaseline"
    assert cfg.MODEL.TEMPORAL_POOL in TEMPORAL_POOL_REGISTRY
    assert cfg.INPUT.SAMPLE_METHOD_TRAIN in ("random", "evenly") and cfg.INPUT.SAMPLE_METHOD_TEST == "all"
    assert cfg.SOLVER.IMS_PER_BATCH % cfg.DATALOADER.NUM_INSTANCE == 0


def test_synthetic_video_configs_differ_only_in_what_they_compare():
    cfgs = {p.stem: _cfg(p) for p in SYNTHETIC_VIDEO}
    assert {c.MODEL.TEMPORAL_POOL for n, c in cfgs.items() if n != "video_single_frame"} >= {"avg", "max", "attention"}
    video, single = cfgs["video_avg"], cfgs["video_single_frame"]
    assert single.INPUT.SEQ_LEN == 1
    # The same frames per batch and the same iterations, so the same number of images seen.
    assert single.SOLVER.IMS_PER_BATCH * single.INPUT.SEQ_LEN == video.SOLVER.IMS_PER_BATCH * video.INPUT.SEQ_LEN
    s = video.DATASETS.SYNTHETIC_TRACKLETS
    params = tracklet_params(s.NUM_IDS, s.NUM_CAMERAS, s.TRACKLETS_PER_CAMERA, s.FRAMES, s.HEIGHT, s.WIDTH, s.SEED)
    num_train = sum(subset == "train" for _, _, subset in tracklet_plan(params))
    iterations = [c.SOLVER.MAX_EPOCH * (num_train // c.SOLVER.IMS_PER_BATCH) for c in (video, single)]
    assert iterations[0] == iterations[1], (num_train, iterations)
    assert single.MODEL.BACKBONE.DEPTH == video.MODEL.BACKBONE.DEPTH


def test_synthetic_video_config_trains_and_evaluates_through_train_net(tmp_path):
    train_net = load_tool("train_net")
    out = tmp_path / "out"
    args = train_net.default_argument_parser().parse_args([
        "--config-file", str(REPO / "configs" / "Synthetic" / "video_smoke.yml"),
        "MODEL.DEVICE", "cpu", "MODEL.TEMPORAL_POOL", "attention", "DATASETS.ROOT", str(tmp_path / "data"),
        "OUTPUT_DIR", str(out), "TEST.FRAME_CHUNK", "4", "SOLVER.MAX_EPOCH", "1", "DATALOADER.NUM_WORKERS", "0",
    ])
    torch.manual_seed(0)
    results = train_net.main(args)
    metrics = results["SyntheticTracklets"]
    assert 0.0 <= metrics["mAP"] <= 100.0 and 0.0 <= metrics["Rank-1"] <= 100.0
    assert (out / "model_final.pth").is_file()
    rows = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines() if line.strip()]
    assert any("total_loss" in r or any(k.startswith("loss_") for k in r) for r in rows)
