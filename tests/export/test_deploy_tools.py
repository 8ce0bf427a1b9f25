"""The command-line tools: export a checkpoint to ONNX and TorchScript, then extract features from images."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fastreid.export import build_export_model, compare_features, export_cfg, load_images
from fastreid.utils.checkpoint import Checkpointer

from .conftest import INPUT_SIZE, randomize_norms

# torch.jit is deprecated in favour of torch.export (FutureWarning); TorchScript export still works.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "configs" / "Synthetic" / "bagtricks_R18.yml")
SIZE_OPTS = ["INPUT.SIZE_TEST", str(list(INPUT_SIZE))]


def _tool(name):
    spec = importlib.util.spec_from_file_location(f"deploy_{name}", REPO / "tools" / "deploy" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A checkpoint as training writes it (classifier for 5 identities) and the model it holds."""
    folder = tmp_path_factory.mktemp("ckpt")
    model = build_export_model(export_cfg(CONFIG, SIZE_OPTS + ["MODEL.HEADS.NUM_CLASSES", "5"]))
    torch.manual_seed(3)
    randomize_norms(model, seed=3)
    Checkpointer(model.model, str(folder)).save("model_final")
    return model, str(folder / "model_final.pth")


def _images(folder: Path):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(40, 20), (64, 32), (100, 48)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"000{i}_c1_00{i}.png")
    return sorted(folder.glob("*.png"))


def test_onnx_export_then_inference_reproduce_the_checkpoint(trained, tmp_path):
    model, weights = trained
    path = _tool("onnx_export").main(
        ["--config-file", CONFIG, "--name", "r18", "--output", str(tmp_path / "onnx"), "--batch-size", "2",
         "MODEL.WEIGHTS", weights, *SIZE_OPTS]
    )
    assert path == str(tmp_path / "onnx" / "r18.onnx")
    images = _images(tmp_path / "images")
    saved = _tool("onnx_inference").main(
        ["--model-path", path, "--input", str(tmp_path / "images" / "*.png"), "--output", str(tmp_path / "feats"),
         "--batch-size", "2"]
    )
    assert [Path(p).name for p in saved] == [p.stem + ".npy" for p in images]
    onnx_features = np.stack([np.load(p) for p in saved])
    with torch.no_grad():
        expected = model(torch.from_numpy(load_images([str(p) for p in images], INPUT_SIZE))).numpy()
    assert compare_features(expected, onnx_features).min_cosine > 0.9999


def test_onnx_inference_can_save_unit_length_features(trained, tmp_path):
    model, weights = trained
    path = _tool("onnx_export").main(
        ["--config-file", CONFIG, "--output", str(tmp_path), "--no-verify", "MODEL.WEIGHTS", weights, *SIZE_OPTS]
    )
    image = _images(tmp_path / "images")[0]
    (saved,) = _tool("onnx_inference").main(
        ["--model-path", path, "--input", str(image), "--output", str(tmp_path / "feats"), "--l2-normalize"]
    )
    feature = np.load(saved)
    with torch.no_grad():
        expected = model(torch.from_numpy(load_images([str(image)], INPUT_SIZE)))[0].numpy()
    assert np.linalg.norm(feature) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(feature, expected / np.linalg.norm(expected), atol=1e-5)


def test_torchscript_export_reproduces_the_checkpoint(trained, tmp_path):
    model, weights = trained
    path = _tool("torchscript_export").main(
        ["--config-file", CONFIG, "--name", "r18", "--output", str(tmp_path), "--no-verify", "MODEL.WEIGHTS",
         weights, *SIZE_OPTS]
    )
    traced = torch.jit.load(path)
    images = torch.rand(3, 3, *INPUT_SIZE) * 255
    with torch.no_grad(), torch.jit.optimized_execution(False):
        agreement = compare_features(model(images).numpy(), traced(images).numpy())
    assert agreement.max_abs_diff < 1e-3 and agreement.min_cosine > 0.99999
