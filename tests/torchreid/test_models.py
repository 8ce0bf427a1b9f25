"""fastreid.torchreid.models: torchreid's build_model on fastreid's registries, its forward contract, and
torchreid's weights giving torchreid's features (oracle fixtures of tests/modeling/test_torchreid_parity.py)."""
import logging
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from fastreid.modeling.meta_arch import Baseline
from fastreid.torchreid import models
from fastreid.utils.checkpoint import Checkpointer, load_inference_weights

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reference" / "torchreid"
formula = SimpleNamespace(**runpy.run_path(str(FIXTURES / "weights.py")))
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def _normalised(images):
    """torchreid's input: ToTensor (0-1) then Normalize with ImageNet's statistics."""
    return (images / 255.0 - IMAGENET_MEAN) / IMAGENET_STD


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_show_avai_models_lists_the_buildable_names(caplog):
    with caplog.at_level(logging.INFO):
        names = models.show_avai_models()
    assert {"resnet50", "resnet50_fc512", "resnet18", "osnet_x1_0"} <= set(names)
    assert "resnet50_fc512" in caplog.text


@pytest.mark.parametrize("name,feat_dim", [("resnet18", 512), ("resnet34", 512), ("resnext50_32x4d", 2048)])
def test_other_names_build_torchvision_layouts(name, feat_dim):
    model = models.build_model(name, 3, pretrained=False)
    assert isinstance(model, Baseline) and model.heads.embedding_dim == feat_dim
    assert model.backbone.layer4[0].downsample[0].stride == (2, 2)  # torchreid's last stride
    assert model.heads.fc is None and model.heads.classifier.out_features == 3


@pytest.mark.parametrize("name,feat_dim", [("resnet50", 2048), ("resnet50_fc512", 512)])
def test_forward_contract(name, feat_dim):
    torch.manual_seed(0)
    softmax = models.build_model(name, 4, loss="softmax", pretrained=False)
    triplet = models.build_model(name, 4, loss="triplet", pretrained=False)
    images = torch.randn(2, 3, 64, 32)
    logits = softmax.train()(images)
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 4)
    logits, features = triplet.train()(images)
    assert logits.shape == (2, 4) and features.shape == (2, feat_dim)
    with torch.no_grad():
        assert softmax.eval()(images).shape == triplet.eval()(images).shape == (2, feat_dim)


def test_dict_batches_keep_fastreids_contract():
    """fastreid's trainer feeds {"images" (0-255), "targets"} and gets loss terms; torchreid's batch
    {"img" (normalised), "pid"} works the same way."""
    model = models.build_model("resnet50_fc512", 3, loss="triplet", pretrained=False).train()
    pixels = torch.randint(0, 256, (4, 3, 64, 32)).float()
    pids = torch.tensor([0, 0, 1, 1])
    losses = model({"images": pixels, "targets": pids})
    assert sorted(losses) == ["loss_cls", "loss_triplet"]
    losses = model({"img": _normalised(pixels), "pid": pids})
    assert sorted(losses) == ["loss_cls", "loss_triplet"]
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model({"images": pixels}), model(_normalised(pixels)), rtol=1e-4, atol=1e-5)


def test_state_dict_keys_are_fastreids_baseline():
    model = models.build_model("resnet50_fc512", 3, pretrained=False)
    keys = list(model.state_dict())
    assert all(k.startswith(("backbone.", "heads.")) for k in keys)
    assert "heads.fc.0.weight" in keys and "heads.classifier.bias" in keys


@pytest.mark.parametrize("name", ["resnet50", "resnet50_fc512"])
def test_torchreid_checkpoint_gives_torchreid_features(name, tmp_path, caplog):
    reference = torch.load(FIXTURES / f"{name}.pt", weights_only=True)
    model = models.build_model(name, reference["num_classes"], pretrained=False)
    shapes = {k.split(".", 1)[1]: v for k, v in model.state_dict().items()}
    assert sorted(shapes) == sorted(reference["state_dict_keys"])
    weights = formula.deterministic_state_dict(
        (k, tuple(shapes[k].shape), shapes[k].dtype) for k in reference["state_dict_keys"])
    path = tmp_path / "model.pth.tar-12"
    torch.save({"state_dict": {"module." + k: v for k, v in weights.items()}, "epoch": 12}, path)
    with caplog.at_level(logging.INFO):
        load_inference_weights(model, str(path))
    assert _warnings(caplog) == []
    model.eval()
    with torch.no_grad():
        features = model(_normalised(formula.input_batch(size=tuple(reference["input_size"][2:]))))
        logits = model.heads.classifier(features)
    ref = reference["features"]
    torch.testing.assert_close(features, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())
    torch.testing.assert_close(logits, reference["logits"], rtol=1e-5,
                               atol=1e-5 * reference["logits"].abs().max().item())


def test_pretrained_without_local_weights_warns_once_and_keeps_random_init(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(models, "_warned_no_weights", set())
    with caplog.at_level(logging.WARNING):
        models.build_model("resnet18", 2, pretrained=True)
        models.build_model("resnet18", 2, pretrained=True)
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "resnet18" in warnings[0] and "random initialisation" in warnings[0]


def test_pretrained_loads_torchvision_file_from_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    torch.manual_seed(1)
    source = models.build_model("resnet18", 2, pretrained=False).backbone.state_dict()
    imagenet = {**source, "fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}
    (tmp_path / "checkpoints").mkdir()
    torch.save(imagenet, tmp_path / "checkpoints" / "resnet18-f37072fd.pth")
    torch.manual_seed(2)
    model = models.build_model("resnet18", 2, pretrained=True)
    assert torch.equal(model.backbone.layer4[1].conv2.weight, source["layer4.1.conv2.weight"])


def test_unknown_names_fail_listing_the_available_ones():
    not_built = [n for n in models._TORCHREID_NAMES if n not in models.show_avai_models()]
    for name in not_built:
        with pytest.raises(KeyError, match="does not build yet.*resnet50_fc512"):
            models.build_model(name, 10)
    with pytest.raises(KeyError, match="Unknown model: 'resnet5'.*resnet50"):
        models.build_model("resnet5", 10)
    with pytest.raises(ValueError, match="Unsupported loss"):
        models.build_model("resnet50", 10, loss="arcface")


def test_named_layers_are_torchreids():
    model = models.build_model("resnet50_fc512", 3, pretrained=False)
    layers = models.named_layers(model)
    assert list(layers) == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
                            "global_avgpool", "fc", "classifier"]
    assert layers["classifier"] is model.heads.classifier and layers["layer4"] is model.backbone.layer4
    plain = torch.nn.Sequential()
    plain.add_module("classifier", torch.nn.Linear(2, 2))
    assert list(models.named_layers(plain)) == ["classifier"]


def test_torchreid_attribute_access_and_featuremaps():
    model = models.build_model("resnet18", 3, pretrained=False).eval()
    assert model.classifier is model.heads.classifier and model.layer4 is model.backbone.layer4
    assert hasattr(model, "global_avgpool") and not hasattr(model, "osnet_conv5")
    images = torch.randn(1, 3, 64, 32)
    with torch.no_grad():
        maps = model(images, return_featuremaps=True)
        assert maps.shape == (1, 512, 2, 1)
        torch.testing.assert_close(model.featuremaps(images), maps)
        torch.testing.assert_close(model(images), maps.mean(dim=(2, 3)))


def test_fastreid_checkpointer_round_trip(tmp_path):
    torch.manual_seed(0)
    model = models.build_model("resnet18", 3, pretrained=False).eval()
    Checkpointer(model, str(tmp_path)).save("model_final")
    torch.manual_seed(1)
    other = models.build_model("resnet18", 3, pretrained=False).eval()
    Checkpointer(other, save_to_disk=False).load(str(tmp_path / "model_final.pth"))
    images = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        assert torch.equal(model(images), other(images))
