"""FastRetri's train_net.py trains a few iterations on SyntheticRetrieval and evaluates Recall@K."""
import importlib.util
import json

import pytest
import torch

from fastreid.data import DatasetCheckError
from fastreid.engine import default_argument_parser
from fastreid.utils.checkpoint import load_inference_weights

from .conftest import PROJECT

CONFIG = str(PROJECT / "configs" / "synthetic_R18.yml")


def _tiny_opts(tmp_path):
    return [
        "MODEL.DEVICE", "cpu",
        "MODEL.PRECISION", "fp32",  # the expected metrics below are recomputed from float32 features
        "DATASETS.ROOT", str(tmp_path / "data"),
        "DATASETS.SYNTHETIC.NUM_IDS", "8",
        "DATASETS.SYNTHETIC.IMAGES_PER_ID", "4",
        "DATASETS.SYNTHETIC.HEIGHT", "32",
        "DATASETS.SYNTHETIC.WIDTH", "16",
        "INPUT.SIZE_TRAIN", "[32, 16]",
        "INPUT.SIZE_TEST", "[32, 16]",
        "SOLVER.IMS_PER_BATCH", "8",
        "SOLVER.OPT", "SGD",  # no Adam state: checkpoints a third of the size
        "DATALOADER.NUM_INSTANCE", "2",
        "DATALOADER.NUM_WORKERS", "0",
        "SOLVER.MAX_EPOCH", "1",
        "SOLVER.WARMUP_ITERS", "1",
        "SOLVER.LOG_PERIOD", "1",
        "TEST.EVAL_PERIOD", "1",
        "TEST.IMS_PER_BATCH", "16",
        "SEED", "0",
        "OUTPUT_DIR", str(tmp_path / "out"),
    ]


def _train_net():
    spec = importlib.util.spec_from_file_location("fast_retri_train_net", PROJECT / "train_net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_net_trains_and_evaluates_recall_at_k(tmp_path):
    from fast_retri import RetriTrainer, SyntheticRetrieval, retrieval_metrics

    train_net = _train_net()
    args = default_argument_parser().parse_args(["--config-file", CONFIG, *_tiny_opts(tmp_path)])
    results = train_net.main(args)["SyntheticRetrieval"]
    assert list(results) == ["Recall@1", "Recall@2", "Recall@4", "Recall@8", "mAP", "metric"]
    lines = [json.loads(line) for line in (tmp_path / "out" / "metrics.json").read_text().splitlines()]
    assert len([line for line in lines if "loss_cls" in line]) == 2  # 16 training images / 8 per batch

    # The reported numbers are Recall@K of the final weights over every test image read once.
    cfg = train_net.setup(default_argument_parser().parse_args(["--config-file", CONFIG, *_tiny_opts(tmp_path)]))
    dataset = SyntheticRetrieval(str(tmp_path / "data"), num_ids=8, images_per_id=4, height=32, width=16,
                                 verbose=False)
    loader, num_images = RetriTrainer.build_test_loader(cfg, "SyntheticRetrieval")
    assert num_images == len(dataset.test) and [p for b in loader for p in b["img_paths"]] == [r[0] for r in
                                                                                                dataset.test]
    model = RetriTrainer.build_model(cfg).eval()
    load_inference_weights(model, str(tmp_path / "out" / "model_final.pth"))
    with torch.no_grad():
        features = torch.cat([model(batch["images"]) for batch in loader])
    expected = retrieval_metrics(features, [r[1] for r in dataset.test], cfg.TEST.RECALLS)
    assert results == pytest.approx(expected)


def test_a_reid_test_set_is_refused_before_training(tmp_path):
    from fast_retri import RetriTrainer

    opts = ["--config-file", CONFIG, *_tiny_opts(tmp_path), "DATASETS.TESTS", "('SyntheticPerson',)"]
    with pytest.raises(DatasetCheckError, match="'SyntheticPerson' is a SyntheticPerson, not a retrieval dataset"):
        RetriTrainer(_train_net().setup(default_argument_parser().parse_args(opts)))
