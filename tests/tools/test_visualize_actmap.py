import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image
from torch import nn
from tool_loading import load_tool

actmap = load_tool("visualize_actmap")


class _PoolBackboneModel(nn.Module):
    """Toy model: normalisation buffers and a backbone that average-pools by 4 (no preprocess_image)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("pixel_mean", torch.full((1, 3, 1, 1), 100.0))
        self.register_buffer("pixel_std", torch.full((1, 3, 1, 1), 50.0))
        self.backbone = nn.AvgPool2d(4)


def test_activation_maps_formula():
    images = torch.full((2, 3, 16, 8), 100.0)
    images[0, :, 4:8, 4:8] = 200.0  # one bright 4x4 cell = one feature-map cell
    model = _PoolBackboneModel()
    maps = actmap.activation_maps(model, images)
    assert maps.shape == (2, 16, 8)
    feats = ((images - 100) / 50).reshape(2, 3, 4, 4, 2, 4).mean((3, 5))  # 4x4 average pooling
    energy = feats.pow(2).sum(1, keepdim=True)
    up = torch.nn.functional.interpolate(energy, size=(16, 8), mode="bilinear", align_corners=False)[:, 0]
    expected = (up[0] - up[0].min()) / (up[0].max() - up[0].min())
    torch.testing.assert_close(maps[0], expected)
    peak_row, peak_col = divmod(int(maps[0].argmax()), 8)
    assert 4 <= peak_row < 8 and 4 <= peak_col < 8 and maps[0].max() == 1 and maps[0, 12:, :].max() == 0
    assert torch.count_nonzero(maps[1]) == 0  # constant activation


def test_baseline_uses_its_own_preprocessing(model):
    images = torch.rand(2, 3, 32, 16) * 255
    with torch.no_grad():
        energy = model.backbone((images - model.pixel_mean) / model.pixel_std).pow(2).sum(1, keepdim=True)
    up = torch.nn.functional.interpolate(energy, size=(32, 16), mode="bilinear", align_corners=False)[:, 0]
    lo, hi = up.flatten(1).min(1).values, up.flatten(1).max(1).values
    expected = (up - lo[:, None, None]) / (hi - lo)[:, None, None]
    torch.testing.assert_close(actmap.activation_maps(model, images), expected)


def test_render_panels_blend():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (6, 4, 3), dtype=np.uint8)
    activation = rng.random((6, 4))
    panels = np.asarray(actmap.render_panels(image, activation)).astype(float)
    assert panels.shape == (6, 3 * 4 + 2 * actmap.GAP, 3)
    heat = np.round(colormaps["jet"](activation)[..., :3] * 255)
    np.testing.assert_array_equal(panels[:, :4], image)
    np.testing.assert_array_equal(panels[:, 4 + actmap.GAP:8 + actmap.GAP], heat)
    np.testing.assert_allclose(panels[:, -4:], np.round(0.5 * image + 0.5 * heat), atol=0.5)
    assert (panels[:, 4:4 + actmap.GAP] == 255).all()


def test_tool_writes_panels_of_the_input_size(cfg, setup_files, tmp_path):
    config_file, weights = setup_files
    sizes = [(40, 20), (25, 30)]
    paths = []
    for i, (h, w) in enumerate(sizes):
        paths.append(str(tmp_path / f"img{i}.png"))
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(paths[-1])
    written = actmap.main(["--config-file", config_file, "MODEL.WEIGHTS", weights, "--images", *paths,
                           "--output", str(tmp_path / "maps")])
    assert [p.rsplit("/", 1)[1] for p in written] == ["000_img0.png", "001_img1.png"]
    height, width = cfg.INPUT.SIZE_TEST
    for path in written:
        assert Image.open(path).size == (3 * width + 2 * actmap.GAP, height)
    from_queries = actmap.main(["--config-file", config_file, "--opts", "MODEL.WEIGHTS", weights,
                                "--num-images", "3", "--output", str(tmp_path / "queries")])
    assert len(from_queries) == 3
