import numpy as np
import pytest
import torch
from PIL import Image

from fastreid.data import build_reid_test_loader, read_image
from fastreid.evaluation import FeatureCollector as EvaluationFeatureCollector
from fastreid.evaluation import inference_on_dataset
from fastreid.predictor import FeatureCollector, FeatureExtractor


def _evaluator_features(cfg, model, flip):
    loader, _ = build_reid_test_loader(cfg, dataset_name="SyntheticPerson")
    return inference_on_dataset(model, loader, FeatureCollector(), flip_test=flip)


@pytest.mark.parametrize("flip", [False, True])
def test_paths_match_evaluator_features(cfg, model, flip):
    ref = _evaluator_features(cfg, model, flip)
    extractor = FeatureExtractor.from_config(cfg, model=model, flip=flip, batch_size=3)
    feats = extractor(ref["img_paths"])
    assert feats.dtype == torch.float32 and feats.shape == ref["feats"].shape
    torch.testing.assert_close(feats, ref["feats"], atol=1e-5, rtol=0)
    assert not model.training


def test_input_kinds_and_batch_size_agree(cfg, model):
    ref = _evaluator_features(cfg, model, False)
    paths = ref["img_paths"][:7]
    extractor = FeatureExtractor.from_config(cfg, model=model, batch_size=2)
    pil = [read_image(p) for p in paths]
    arrays = [np.asarray(im) for im in pil]
    tensor = torch.stack([extractor.transform(im) for im in pil])
    expected = ref["feats"][:7]
    for images in (pil, arrays, tensor):
        torch.testing.assert_close(extractor(images), expected, atol=1e-5, rtol=0)
    single = FeatureExtractor.from_config(cfg, model=model, batch_size=64)(paths[0])
    torch.testing.assert_close(single, expected[:1], atol=1e-5, rtol=0)


def test_normalize_and_flip_formula(cfg, model):
    image = np.random.default_rng(0).integers(0, 255, (40, 20, 3), dtype=np.uint8)
    plain = FeatureExtractor.from_config(cfg, model=model, flip=False)
    mirrored = plain([np.ascontiguousarray(image[:, ::-1])])
    flipped = FeatureExtractor.from_config(cfg, model=model, flip=True)([image])
    torch.testing.assert_close(flipped, (plain([image]) + mirrored) / 2, atol=1e-5, rtol=0)
    unit = FeatureExtractor.from_config(cfg, model=model, normalize=True)([image, Image.fromarray(image)])
    torch.testing.assert_close(unit.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(unit[0], plain([image])[0] / plain([image])[0].norm(), atol=1e-6, rtol=0)


def test_runs_in_eval_mode_and_restores_training_flag(cfg, model):
    images = torch.rand(4, 3, 32, 16) * 255
    expected = FeatureExtractor.from_config(cfg, model=model)(images)
    model.train()
    torch.testing.assert_close(FeatureExtractor.from_config(cfg, model=model)(images), expected)
    assert model.training


def test_from_config_file_loads_weights(cfg, model, setup_files):
    config_file, weights = setup_files
    image = np.random.default_rng(1).integers(0, 255, (32, 16, 3), dtype=np.uint8)
    loaded = FeatureExtractor.from_config_file(config_file, weights, opts=["TEST.IMS_PER_BATCH", 2])
    assert loaded.batch_size == 2 and loaded.model is not model
    expected = FeatureExtractor.from_config(cfg, model=model)([image])
    torch.testing.assert_close(loaded([image]), expected, atol=1e-5, rtol=0)
    random_init = FeatureExtractor.from_config_file(config_file)([image])  # no weights: different numbers
    assert not torch.allclose(random_init, expected, atol=1e-3)


def test_rejects_bad_inputs(cfg, model):
    extractor = FeatureExtractor.from_config(cfg, model=model)
    with pytest.raises(ValueError, match="uint8"):
        extractor([np.zeros((8, 4, 3), dtype=np.float32)])
    with pytest.raises(ValueError, match="B×3×H×W"):
        extractor(torch.zeros(2, 1, 8, 4))
    with pytest.raises(ValueError, match="No images"):
        extractor([])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(cfg, model):
    image = np.random.default_rng(2).integers(0, 255, (32, 16, 3), dtype=np.uint8)
    cpu = FeatureExtractor.from_config(cfg, model=model)([image])
    gpu = FeatureExtractor.from_config(cfg, model=model.cuda())([image])
    assert gpu.device.type == "cpu"
    torch.testing.assert_close(gpu, cpu, atol=1e-4, rtol=0)


def test_feature_collector_is_the_evaluators(cfg, model):
    assert FeatureCollector is EvaluationFeatureCollector
    loader, num_query = build_reid_test_loader(cfg, dataset_name="SyntheticPerson")
    data = inference_on_dataset(model, loader, FeatureCollector())
    dataset = loader.dataset
    assert data["img_paths"] == [item[0] for item in dataset.img_items]
    assert data["pids"].tolist() == list(dataset.pids) and len(data["feats"]) == len(dataset) > num_query
