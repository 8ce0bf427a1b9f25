"""FastAttr's train_net.py trains a few iterations on SyntheticPersonAttr and evaluates with AttrEvaluator."""
import importlib.util
import json

import numpy as np
import pytest
import torch

from fastreid.data import DatasetCheckError
from fastreid.engine import default_argument_parser
from fastreid.utils.checkpoint import load_inference_weights

from .conftest import PROJECT

CONFIG = str(PROJECT / "configs" / "synthetic_attr_R18.yml")


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
        "INPUT.PADDING", "2",
        "SOLVER.IMS_PER_BATCH", "8",
        "SOLVER.OPT", "SGD",  # no Adam state: checkpoints a third of the size
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
    spec = importlib.util.spec_from_file_location("fast_attr_train_net", PROJECT / "train_net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_net_trains_and_evaluates_attributes(tmp_path):
    from fast_attr import ATTRIBUTE_NAMES, AttrTrainer, SyntheticPersonAttr, attribute_metrics
    from fast_attr.datasets import positive_ratios

    train_net = _train_net()
    args = default_argument_parser().parse_args(["--config-file", CONFIG, *_tiny_opts(tmp_path)])
    results = train_net.main(args)["SyntheticPersonAttr"]
    assert set(results) == {"Accu", "Prec", "Recall", "F1", "mA", "metric"}
    lines = [json.loads(line) for line in (tmp_path / "out" / "metrics.json").read_text().splitlines()]
    assert len([line for line in lines if "loss_bce" in line]) == 2  # 16 training images / 8 per batch

    # --eval-only builds the 25-attribute classifier and loads it: the same numbers.
    weights = ["MODEL.WEIGHTS", str(tmp_path / "out" / "model_final.pth")]
    args = default_argument_parser().parse_args(["--config-file", CONFIG, "--eval-only", *_tiny_opts(tmp_path),
                                                 *weights])
    assert train_net.main(args)["SyntheticPersonAttr"] == pytest.approx(results)

    # The trainer handed the training set's positive ratios to the loss.
    cfg = train_net.setup(default_argument_parser().parse_args(["--config-file", CONFIG, *_tiny_opts(tmp_path)]))
    trainer = AttrTrainer(cfg)
    dataset = SyntheticPersonAttr(str(tmp_path / "data"), num_ids=8, images_per_id=4, height=32, width=16,
                                  verbose=False)
    assert trainer.cfg.MODEL.HEADS.NUM_CLASSES == len(ATTRIBUTE_NAMES)
    torch.testing.assert_close(trainer.model.losses[0].positive_ratios,
                               torch.as_tensor(positive_ratios(dataset.train)))

    # The reported numbers are attribute_metrics of the final model's probabilities on every test image.
    model = AttrTrainer.build_model(trainer.cfg).eval()
    load_inference_weights(model, weights[1])
    loader, num_images = AttrTrainer.build_test_loader(trainer.cfg, "SyntheticPersonAttr")
    assert num_images == len(dataset.test)
    with torch.no_grad():
        batches = [(model(batch["images"]), batch["targets"]) for batch in loader]
    probs, labels = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    torch.testing.assert_close(labels, torch.as_tensor(np.stack([r[3] for r in dataset.test])))
    assert results == pytest.approx(attribute_metrics(probs, labels, cfg.TEST.THRES))


def test_a_reid_test_set_or_an_identity_sampler_is_refused_before_training(tmp_path):
    from fast_attr import AttrTrainer

    train_net = _train_net()
    opts = ["--config-file", CONFIG, *_tiny_opts(tmp_path), "DATALOADER.SAMPLER_TRAIN", "NaiveIdentitySampler"]
    with pytest.raises(DatasetCheckError, match="SAMPLER_TRAIN TrainingSampler"):
        AttrTrainer(train_net.setup(default_argument_parser().parse_args(opts)))
    opts = ["--config-file", CONFIG, *_tiny_opts(tmp_path), "DATASETS.TESTS", "('SyntheticPerson',)"]
    with pytest.raises(TypeError, match="'SyntheticPerson' is a SyntheticPerson, not an attribute dataset"):
        AttrTrainer(train_net.setup(default_argument_parser().parse_args(opts)))
