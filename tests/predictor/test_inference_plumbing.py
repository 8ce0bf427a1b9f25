"""The inference plumbing the evaluator and ``FeatureExtractor`` share: ``forward_features``, ``inference_context``
and the config loader behind ``load_inference_config``."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from tiny_reid import cfg, model, one_thread, setup_files  # noqa: E402,F401  (fixtures)
import pytest
import torch
from torch import nn

from fastreid.config import get_cfg, load_config
from fastreid.data import build_reid_test_loader
from fastreid.evaluation import DatasetEvaluator, inference_on_dataset
from fastreid.evaluation.evaluator import forward_features
from fastreid.predictor import FeatureExtractor, load_inference_config


class _Recorder(nn.Module):
    """Features = per-column sums of the images' first channel, so a mirrored batch gives different features;
    records what it was called with."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.calls = []

    def forward(self, inputs):
        self.calls.append((inputs, self.training))
        images = inputs["images"] if isinstance(inputs, dict) else inputs
        return images[:, 0].sum(1) * self.scale


class _KeepOutputs(DatasetEvaluator):
    def reset(self):
        self.outputs = []

    def process(self, inputs, outputs):
        self.outputs.append(outputs)

    def evaluate(self):
        return {"feats": torch.cat(self.outputs)}


def test_forward_features_on_a_dict_and_on_a_tensor():
    images = torch.rand(2, 3, 4, 5) * 255
    targets = torch.tensor([3, 4])
    batch = {"images": images, "targets": targets}
    model = _Recorder()
    plain = images[:, 0].sum(1)
    assert torch.equal(forward_features(model, batch), plain)
    assert torch.equal(forward_features(model, images), plain)
    model.calls.clear()
    flipped = forward_features(model, batch, flip=True)
    assert torch.equal(flipped, (plain + plain.flip(dims=[1])) / 2)
    assert not torch.equal(flipped, plain)
    mirrored = model.calls[1][0]
    assert mirrored is not batch and mirrored["targets"] is targets and torch.equal(mirrored["images"],
                                                                                      images.flip(dims=[3]))
    assert batch["images"] is images and batch.keys() == {"images", "targets"}  # the caller's dict is untouched
    assert torch.equal(forward_features(model, images, flip=True), flipped)


@pytest.mark.parametrize("flip", [False, True])
def test_extractor_features_are_bitwise_the_evaluators(cfg, model, flip):
    loader, _ = build_reid_test_loader(cfg, dataset_name="SyntheticPerson")
    paths = [p for batch in loader for p in batch["img_paths"]]
    reference = inference_on_dataset(model, loader, _KeepOutputs(), flip_test=flip)["feats"]
    extractor = FeatureExtractor.from_config(cfg, model=model, flip=flip)  # TEST.IMS_PER_BATCH, as the loader
    assert extractor.batch_size == cfg.TEST.IMS_PER_BATCH
    assert torch.equal(extractor(paths), reference)


def test_extractor_runs_in_eval_mode_and_restores_the_flag_even_on_error():
    model = _Recorder().train()
    extractor = FeatureExtractor(model, transform=None, flip=True)
    extractor(torch.rand(2, 3, 4, 5))
    assert model.training and [training for _, training in model.calls] == [False, False]

    def fail(inputs):
        raise RuntimeError("boom")

    model.forward = fail
    with pytest.raises(RuntimeError, match="boom"):
        extractor(torch.rand(2, 3, 4, 5))
    assert model.training
    model.eval()
    with pytest.raises(RuntimeError, match="boom"):
        extractor(torch.rand(2, 3, 4, 5))
    assert not model.training


def test_load_inference_config_is_load_config_set_up_for_inference(setup_files):
    config_file, weights = setup_files
    opts = ["TEST.IMS_PER_BATCH", 2, "MODEL.BACKBONE.PRETRAIN", True]
    cfg = load_inference_config(config_file, weights, opts)
    expected = get_cfg()
    expected.merge_from_file(config_file)
    expected.merge_from_list(opts)
    expected.MODEL.BACKBONE.PRETRAIN = False  # after the overrides: inference never fetches backbone weights
    expected.MODEL.WEIGHTS = weights
    assert cfg.is_frozen() and cfg == expected
    without_weights = load_inference_config(config_file, opts=["MODEL.WEIGHTS", "given.pth"])
    assert without_weights.MODEL.WEIGHTS == "given.pth"
    assert without_weights.TEST == load_config(config_file).TEST
