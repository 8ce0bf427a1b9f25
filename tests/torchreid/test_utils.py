"""fastreid.torchreid.utils: torchreid's checkpoint tools, layer freezing, FeatureExtractor and model complexity."""
import logging
import os
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn

import fastreid.torchreid as torchreid
from fastreid.torchreid import utils
from fastreid.utils.checkpoint import Checkpointer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reference" / "torchreid"
formula = SimpleNamespace(**runpy.run_path(str(FIXTURES / "weights.py")))
# torchreid's test preprocessing after ToTensor's division by 255: torchvision's Normalize, ImageNet statistics.
NORMALIZE = torchvision.transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def _normalised(pixels):
    return NORMALIZE(pixels / 255.0)


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


class TorchreidResNet18(nn.Module):
    """torchreid's ``resnet18`` as torchreid writes it: torchvision's layers at the top level, global average
    pooling, a ``classifier``; eval mode returns the pooled features."""

    def __init__(self, num_classes):
        super().__init__()
        tv = torchvision.models.resnet18()
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(tv, name))
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        features = self.global_avgpool(x).flatten(1)
        return features if not self.training else self.classifier(features)


def _randomise_bn(model, seed):
    """Non-trivial BN statistics, so a missed buffer changes the features."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
    return model


def _torchreid_engine_file(path, model, epoch=12, **extra):
    """A file as torchreid's engine saves it under DataParallel."""
    state = {"state_dict": {"module." + k: v for k, v in model.state_dict().items()}, "epoch": epoch,
             "rank1": np.float32(0.5), **extra}
    torch.save(state, path)
    return str(path)


# --- save / load / resume -----------------------------------------------------------------------------------


def test_save_checkpoint_writes_torchreids_files_atomically(tmp_path):
    model = nn.Linear(3, 2)
    state = {"state_dict": {"module." + k: v for k, v in model.state_dict().items()}, "epoch": 3, "rank1": 0.25}
    path = utils.save_checkpoint(state, str(tmp_path / "model"), is_best=True, remove_module_from_keys=True)
    assert path == str(tmp_path / "model" / "model.pth.tar-3")
    assert sorted(os.listdir(tmp_path / "model")) == ["model-best.pth.tar", "model.pth.tar-3"]  # no temporaries
    for name in ("model.pth.tar-3", "model-best.pth.tar"):
        saved = utils.load_checkpoint(str(tmp_path / "model" / name))
        assert sorted(saved["state_dict"]) == ["bias", "weight"] and saved["epoch"] == 3
        assert torch.equal(saved["state_dict"]["weight"], model.weight)
    assert "module.weight" in state["state_dict"]  # the caller's dict is left alone
    with pytest.raises(KeyError, match="epoch"):
        utils.save_checkpoint({"state_dict": {}}, str(tmp_path))


def test_load_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        utils.load_checkpoint(str(tmp_path / "nowhere.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_text("<html>not found</html>")
    with pytest.raises(ValueError, match="junk.pth"):
        utils.load_checkpoint(str(junk))
    with pytest.raises(ValueError, match="empty"):
        utils.load_checkpoint("")


def _training_state(seed):
    torch.manual_seed(seed)
    model = torchreid.models.build_model("resnet18", 3, pretrained=False)
    optimizer = torchreid.optim.build_optimizer(model, optim="adam", lr=0.01)
    scheduler = torchreid.optim.build_lr_scheduler(optimizer, lr_scheduler="single_step", stepsize=2)
    return model, optimizer, scheduler


def test_resume_from_checkpoint_restores_model_optimizer_and_scheduler(tmp_path, caplog):
    model, optimizer, scheduler = _training_state(0)
    loss = model.train()(torch.randn(4, 3, 32, 16)).logsumexp(1).mean()
    loss.backward()
    optimizer.step()
    scheduler.step()
    state = {"state_dict": {"module." + k: v for k, v in model.state_dict().items()}, "epoch": 5,
             "rank1": np.float32(0.75), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    path = utils.save_checkpoint(state, str(tmp_path))

    other, other_optimizer, other_scheduler = _training_state(1)
    with caplog.at_level(logging.INFO):
        start_epoch = utils.resume_from_checkpoint(path, other, other_optimizer, other_scheduler)
    assert start_epoch == 5 and "75.0%" in caplog.text
    for (k, v), w in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(v, w), k
    assert other_optimizer.state_dict()["state"].keys() == optimizer.state_dict()["state"].keys()
    first = next(iter(optimizer.state_dict()["state"]))
    assert torch.equal(other_optimizer.state_dict()["state"][first]["exp_avg"],
                       optimizer.state_dict()["state"][first]["exp_avg"])
    assert other_scheduler.last_epoch == scheduler.last_epoch == 1


def test_resume_needs_a_training_checkpoint(tmp_path):
    model = nn.Linear(2, 2)
    torch.save(model.state_dict(), tmp_path / "bare.pth")
    with pytest.raises(KeyError, match="load_pretrained_weights"):
        utils.resume_from_checkpoint(str(tmp_path / "bare.pth"), model)


# --- load_pretrained_weights --------------------------------------------------------------------------------


def test_torchreid_named_model_gives_identical_features(tmp_path, caplog):
    """The issue's criterion: torchreid's resnet18 (its key names, DataParallel's ``module.``, its engine's
    checkpoint dict) loads into fastreid's resnet18 and gives the same eval features."""
    torch.manual_seed(0)
    source = _randomise_bn(TorchreidResNet18(num_classes=5), seed=0).eval()
    path = _torchreid_engine_file(tmp_path / "model.pth.tar-12", source,
                                  optimizer={"state": {}, "param_groups": []})
    torch.manual_seed(1)
    model = torchreid.models.build_model("resnet18", 5, pretrained=False)
    with caplog.at_level(logging.INFO):
        loaded, discarded = utils.load_pretrained_weights(model, path)
    assert _warnings(caplog) == [] and discarded == []
    assert len(loaded) == len(model.state_dict())
    images = _normalised(formula.input_batch(size=(64, 32)))
    with torch.no_grad():
        expected = source(images)
        features = model.eval()(images)
    assert torch.equal(features, expected)


def test_mismatched_classifier_is_skipped_and_listed(tmp_path, caplog):
    torch.manual_seed(0)
    source = _randomise_bn(TorchreidResNet18(num_classes=7), seed=1).eval()
    path = _torchreid_engine_file(tmp_path / "model.pth.tar-3", source)
    model = torchreid.models.build_model("resnet18", 3, pretrained=False)
    classifier_before = model.heads.classifier.weight.clone()
    with caplog.at_level(logging.WARNING):
        loaded, discarded = utils.load_pretrained_weights(model, path)
    assert discarded == ["heads.classifier.weight", "heads.classifier.bias"]
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "heads.classifier.weight" in warnings[0] and "discarded" in warnings[0]
    assert torch.equal(model.heads.classifier.weight, classifier_before)
    assert torch.equal(model.backbone.layer4[1].bn2.running_var, source.layer4[1].bn2.running_var)
    images = _normalised(formula.input_batch(size=(64, 32)))
    with torch.no_grad():
        assert torch.equal(model.eval()(images), source(images))


def test_nothing_matched_warns_and_leaves_the_model(tmp_path, caplog):
    torch.save({"state_dict": {"module.other.weight": torch.zeros(2)}}, tmp_path / "w.pth")
    model = nn.Linear(2, 2)
    before = model.weight.clone()
    with caplog.at_level(logging.WARNING):
        assert utils.load_pretrained_weights(model, str(tmp_path / "w.pth")) == ([], ["other.weight"])
    assert any("cannot be loaded" in w for w in _warnings(caplog))
    assert torch.equal(model.weight, before)


def test_plain_torchreid_module_loads_bare_state_dict(tmp_path):
    torch.manual_seed(0)
    source = TorchreidResNet18(num_classes=2)
    torch.save(source.state_dict(), tmp_path / "zoo.pth")
    target = TorchreidResNet18(num_classes=2)
    utils.load_pretrained_weights(nn.DataParallel(target), str(tmp_path / "zoo.pth"))
    assert torch.equal(target.conv1.weight, source.conv1.weight)


def test_fastreid_checkpoint_loads(tmp_path):
    torch.manual_seed(0)
    source = torchreid.models.build_model("resnet18", 3, pretrained=False)
    Checkpointer(source, str(tmp_path)).save("model_final")
    model = torchreid.models.build_model("resnet18", 3, pretrained=False)
    loaded, discarded = utils.load_pretrained_weights(model, str(tmp_path / "model_final.pth"))
    assert discarded == [] and torch.equal(model.backbone.conv1.weight, source.backbone.conv1.weight)


def test_torchreid_oracle_features_through_load_pretrained_weights(tmp_path):
    """Weights read by torchreid 0.2.5 itself (oracle fixture) give its features here too."""
    reference = torch.load(FIXTURES / "resnet50_fc512.pt", weights_only=True)
    model = torchreid.models.build_model("resnet50_fc512", reference["num_classes"], pretrained=False)
    shapes = {k.split(".", 1)[1]: v for k, v in model.state_dict().items()}
    weights = formula.deterministic_state_dict(
        (k, tuple(shapes[k].shape), shapes[k].dtype) for k in reference["state_dict_keys"])
    torch.save({"state_dict": {"module." + k: v for k, v in weights.items()}, "epoch": 60}, tmp_path / "m.pth")
    utils.load_pretrained_weights(model, str(tmp_path / "m.pth"))
    with torch.no_grad():
        features = model.eval()(_normalised(formula.input_batch(size=tuple(reference["input_size"][2:]))))
    ref = reference["features"]
    torch.testing.assert_close(features, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())


# --- layers -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("open_layers", ["classifier", ["fc", "classifier"]])
def test_open_specified_layers_freezes_the_others(open_layers):
    model = torchreid.models.build_model("resnet50_fc512", 3, pretrained=False).train()
    utils.open_specified_layers(model, open_layers)
    names = [open_layers] if isinstance(open_layers, str) else open_layers
    for name, layer in torchreid.models.named_layers(model).items():
        assert layer.training == (name in names), name
        assert all(p.requires_grad == (name in names) for p in layer.parameters()), name
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(tuple(f"heads.{x}." for x in names)) for n in trainable)
    assert model.training and model.heads.training  # containers keep train mode: logits, not features
    assert model(torch.randn(2, 3, 32, 16)).shape == (2, 3)
    utils.open_all_layers(model)
    assert model.backbone.layer1.training and all(p.requires_grad for p in model.parameters())


def test_open_specified_layers_on_a_plain_module_and_unknown_names():
    model = TorchreidResNet18(num_classes=2)
    utils.open_specified_layers(nn.DataParallel(model), "layer4")
    assert model.layer4.training and not model.layer3.training and not model.conv1.weight.requires_grad
    assert all(p.requires_grad for p in model.layer4.parameters())
    with pytest.raises(ValueError, match=r"\['layer5'\].*available: \['conv1'.*'classifier'\]"):
        utils.open_specified_layers(model, ["layer4", "layer5"])


def test_count_num_param_leaves_out_the_classifier():
    model = torchreid.models.build_model("resnet18", 10, pretrained=False)
    total = sum(p.numel() for p in model.parameters())
    assert utils.count_num_param(model) == total - 512 * 10 - 10
    assert utils.count_num_param(TorchreidResNet18(10)) == total - 512 * 10 - 10


# --- model complexity ---------------------------------------------------------------------------------------


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(2)
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 6)
        self.classifier = nn.Linear(6, 10)

    def forward(self, x):
        x = self.global_avgpool(self.maxpool(self.relu(self.bn1(self.conv1(x))))).flatten(1)
        features = self.fc(x)
        return features if not self.training else self.classifier(features)


def test_compute_model_complexity_hand_count(caplog):
    model = Tiny().train()
    conv = (2 * 4 * 8 * 4) * (3 * 3 * 3)  # outputs x multiply-adds each
    fc = 2 * 4 * 6
    params = 4 * 3 * 3 * 3 + 2 * 4 + (4 * 6 + 6)  # the classifier is not used at test time
    with caplog.at_level(logging.INFO):
        assert utils.compute_model_complexity(model, (2, 3, 8, 4), verbose=True) == (params, conv + fc)
    assert "conv1" in caplog.text and "Total: params=146, flops=6,960" in caplog.text
    assert model.training
    bn = 2 * (2 * 4 * 8 * 4)  # eval BN with affine: scale and shift per element
    relu = 2 * 4 * 8 * 4
    maxpool = (2 * 2 - 1) * (2 * 4 * 4 * 2)
    avgpool = 2 * 4 * 4 * 2  # one add per input element
    assert utils.compute_model_complexity(model, (2, 3, 8, 4), only_conv_linear=False) == \
        (params, conv + fc + bn + relu + maxpool + avgpool)


def test_compute_model_complexity_of_a_torchreid_model():
    model = torchreid.models.build_model("resnet18", 5, pretrained=False)
    num_params, flops = utils.compute_model_complexity(model, (1, 3, 32, 16))
    assert num_params == utils.count_num_param(model)
    assert flops > 0


# --- FeatureExtractor ---------------------------------------------------------------------------------------


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    source = _randomise_bn(TorchreidResNet18(num_classes=4), seed=2)
    return _torchreid_engine_file(tmp_path / "model.pth.tar-1", source)


def _images(tmp_path, n=3):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (32, 16, 3), dtype=np.uint8) for _ in range(n)]
    paths = []
    for i, array in enumerate(arrays):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(array).save(paths[-1])
    return arrays, paths


def test_feature_extractor_matches_the_model_on_hand_normalised_images(tmp_path, weights, caplog):
    with caplog.at_level(logging.INFO):
        extractor = utils.FeatureExtractor("resnet18", weights, image_size=(32, 16), device="cpu")
    assert "params" in caplog.text and "flops" in caplog.text
    arrays, paths = _images(tmp_path)
    pixels = torch.stack([torch.from_numpy(a).permute(2, 0, 1).float() for a in arrays])
    with torch.no_grad():
        expected = extractor.model(_normalised(pixels))
    features = extractor(paths)
    assert features.shape == (3, 512) and features.device.type == "cpu"
    torch.testing.assert_close(features, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(extractor(arrays), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(extractor(paths[1]), expected[1:2], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(extractor(arrays[2]), expected[2:], rtol=1e-5, atol=1e-5)
    assert not extractor.model.training
    # A tensor is torchreid's preprocessed input: used as it is.
    torch.testing.assert_close(extractor(_normalised(pixels)), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(extractor(_normalised(pixels)[0]), expected[:1], rtol=1e-5, atol=1e-5)
    with pytest.raises(TypeError, match="float"):
        extractor([1.5])


def test_feature_extractor_options(tmp_path, weights, caplog):
    arrays, paths = _images(tmp_path, n=2)
    mean, std = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
    extractor = utils.FeatureExtractor("resnet18", weights, image_size=(32, 16), pixel_mean=mean, pixel_std=std,
                                       device="cpu", verbose=False)
    raw = utils.FeatureExtractor("resnet18", weights, image_size=(32, 16), pixel_norm=False, device="cpu",
                                 verbose=False)
    pixels = torch.stack([torch.from_numpy(a).permute(2, 0, 1).float() for a in arrays])
    with torch.no_grad():
        torch.testing.assert_close(extractor(paths), extractor.model((pixels / 255 - 0.5) / 0.25),
                                   rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(raw(paths), raw.model(pixels / 255), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback without a GPU")
def test_feature_extractor_falls_back_to_cpu(caplog):
    with caplog.at_level(logging.WARNING):
        extractor = utils.FeatureExtractor("resnet18", image_size=(32, 16), device="cuda", verbose=False)
    assert extractor.device.type == "cpu"
    assert any("no GPU" in w for w in _warnings(caplog))
