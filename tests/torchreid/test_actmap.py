"""Activation maps: fastreid.evaluation.actmap (the library), torchreid.utils.visualize_actmap and the how-to's
command tools/torchreid/visualize_actmap.py, on the synthetic set."""
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fastreid.torchreid as torchreid
from fastreid import evaluation
from fastreid.data.datasets import SyntheticPerson
from fastreid.evaluation import actmap


TOOLS = Path(__file__).resolve().parents[2] / "tools"


def load_tool(name):
    """``tools/<name>.py`` (not a package) as a module."""
    spec = importlib.util.spec_from_file_location(f"actmap_test_{name.replace('/', '_')}", TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ActmapSynthetic(SyntheticPerson):
    """8 ids (4 train), 2 cameras, 3 images each, 32x16."""

    @classmethod
    def from_config(cls, cfg):
        return dict(num_ids=8, num_cameras=2, images_per_id=3, height=32, width=16, seed=3)


# Registration is process-wide: this module's key is its own.
torchreid.data.register_image_dataset("synthetic_actmap", ActmapSynthetic)
tool = load_tool("torchreid/visualize_actmap")


@pytest.fixture
def datamanager(tmp_path):
    return torchreid.data.ImageDataManager(root=str(tmp_path / "data"), sources="synthetic_actmap", height=32,
                                           width=16, batch_size_test=4, workers=0, use_gpu=False, transforms=None)


def test_library_exports():
    assert evaluation.activation_maps is actmap.activation_maps
    assert evaluation.render_panels is actmap.render_panels
    assert load_tool("visualize_actmap").render_panels is actmap.render_panels


def test_torchreid_model_maps_match_fastreids_preprocessing():
    """A TorchreidModel takes a bare tensor as normalised; the library feeds it 0-255 pixels as a batch dict."""
    torch.manual_seed(0)
    model = torchreid.models.build_model("resnet18", 3, pretrained=False)
    pixels = torch.rand(2, 3, 128, 64) * 255  # a 4×2 map (a 1×1 map is constant: all zeros)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        maps = model.eval()((pixels / 255 - mean) / std, return_featuremaps=True)
    expected = actmap.featuremap_activations(maps, (128, 64))
    torch.testing.assert_close(actmap.activation_maps(model, pixels), expected, rtol=1e-4, atol=1e-5)
    assert expected.shape == (2, 128, 64) and float(expected.min()) == 0 and float(expected.max()) == 1
    one_by_one = actmap.featuremap_activations(maps[:, :, :1, :1], (32, 16))
    assert torch.count_nonzero(one_by_one) == 0


def test_render_panels_overlay_weight():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (6, 4, 3), dtype=np.uint8)
    activation = rng.random((6, 4))
    even = np.asarray(actmap.render_panels(image, activation)).astype(float)
    torchreids = np.asarray(actmap.render_panels(image, activation, image_weight=0.3)).astype(float)
    heat = even[:, 4 + actmap.GAP:8 + actmap.GAP]
    np.testing.assert_allclose(torchreids[:, -4:], 0.3 * image + 0.7 * heat, atol=0.5 + 1e-4)  # rounded


def test_visualize_actmap_writes_one_panel_per_query_image(datamanager, tmp_path):
    model = torchreid.models.build_model("resnet18", datamanager.num_train_pids, pretrained=False).train()
    written = torchreid.utils.visualize_actmap(model, datamanager.test_loader, str(tmp_path / "out"), 16, 32)
    query, _ = datamanager.return_query_and_gallery_by_name("synthetic_actmap")
    folder = tmp_path / "out" / "actmap_synthetic_actmap"
    assert sorted(os.listdir(folder)) == sorted(os.path.splitext(os.path.basename(r[0]))[0] + ".jpg" for r in query)
    assert len(written) == len(query) > 0
    assert Image.open(written[0]).size == (3 * 16 + 2 * actmap.GAP, 32)
    # The first panel is the query image itself (JPEG-compressed).
    panel = np.asarray(Image.open(written[0])).astype(float)[:, :16]
    original = np.asarray(Image.open(query[0][0]).convert("RGB").resize((16, 32))).astype(float)
    assert np.abs(panel - original).mean() < 12
    assert model.training  # mode restored
    with pytest.raises(ValueError, match="height=64, width=32"):
        torchreid.utils.visualize_actmap(model, datamanager.test_loader, str(tmp_path / "bad"), 32, 64)


def test_model_without_featuremaps_gets_a_clear_error(datamanager, tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    with pytest.raises(TypeError, match="return_featuremaps"):
        torchreid.utils.visualize_actmap(model, datamanager.test_loader, str(tmp_path), 16, 32)


def test_howto_command(datamanager, tmp_path):
    torch.manual_seed(0)
    model = torchreid.models.build_model("resnet18", datamanager.num_train_pids, pretrained=False)
    weights = torchreid.utils.save_checkpoint({"state_dict": model.state_dict(), "epoch": 1}, str(tmp_path / "w"))
    written = tool.main(["--root", str(tmp_path / "data"), "-d", "synthetic_actmap", "-m", "resnet18",
                         "--weights", weights, "--save-dir", str(tmp_path / "vis"), "--height", "32", "--width", "16",
                         "--workers", "0"])
    query, _ = datamanager.return_query_and_gallery_by_name("synthetic_actmap")
    assert len(written) == len(query)
    assert all(p.startswith(str(tmp_path / "vis" / "actmap_synthetic_actmap")) for p in written)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        tool.main(["--root", str(tmp_path / "data"), "-d", "synthetic_actmap", "-m", "resnet18", "--weights",
                   str(tmp_path / "missing.pth"), "--height", "32", "--width", "16", "--workers", "0"])
