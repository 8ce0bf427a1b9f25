"""Every registered backbone and every model-zoo architecture, generically: each is covered once it registers.

Cases are the entries of ``fastreid.modeling.backbones.zoo.model_zoo()`` (built as torchreid builds them, with
``fastreid.torchreid.models.build_model``) and the backbones of ``BACKBONE_REGISTRY`` that no zoo entry uses
(built into a fastreid ``Baseline``). For each: it builds at a small input, a training step runs forward and
backward on the CPU with gradients reaching every backbone parameter, the feature map has ``out_channels``
channels, torchreid's forward contract holds, and the eval-mode model exports to ONNX with features matching
onnxruntime's — or is listed in ``ONNX_UNSUPPORTED`` with the op that prevents it (a listed model that starts
exporting fails, so the table stays exact).

Budget (``make test`` on 2 cores): the fast loop builds and trains the first case of each backbone builder and
exports the first zoo entry of each (``HEAVY`` and ``HEAVY_EXPORT`` name the exceptions and why); the other
widths and depths of a family run only with the slow tests, where the ONNX sweep also skips a model whose
module types (backbone builder, layer classes) equal those of one already exported in the session: the same
ops at another width or depth give the same graph.
"""
import math
from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, List, Tuple

import pytest
import torch
from torch import nn

from fastreid.config import get_cfg
from fastreid.export import FeatureExtractor, OnnxFeatureExtractor, check_agreement, export_onnx, random_images
from fastreid.modeling import BACKBONE_REGISTRY
from fastreid.modeling import build_model as build_fastreid_model
from fastreid.modeling.backbones import model_zoo
from fastreid.torchreid.models import build_model

# Tracing warns about shape-dependent Python branches; the exported sizes are fixed and the feature comparison
# is what guards the result.
pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")

NUM_CLASSES = 5
BATCH_SIZE = 2

# Registered backbones that no zoo entry uses: the options that select a small member of the family (a
# backbone missing here is built with the default config plus its name).
STANDALONE_OPTIONS: Dict[str, Tuple] = {
    "build_vit_backbone": ("MODEL.BACKBONE.DEPTH", "small"),
    # fast-reid's MobileNetV2 (torchvision's); torchreid's names build torchreid's variant.
    "build_mobilenetv2_backbone": ("MODEL.BACKBONE.DEPTH", "1.0x"),
}

# Test inputs other than a quarter of the entry's ``input_size``, each with its reason.
SMALL_INPUT: Dict[str, Tuple[int, int]] = {
    "hacnn": (160, 64),  # the hard-attention branch crops fixed regions of a 160×64 input
    # Unpadded 3×3 reductions need 75 pixels a side (timm's min_input_size for both).
    "inceptionv4": (75, 75),
    "inceptionresnetv2": (75, 75),
    "mudeep": (256, 128),  # its fc layer takes the whole map, sized at build time for 256×128 (INPUT.SIZE_TRAIN)
}

# First cases of their builder that are too heavy for the fast loop all the same: name → why.
HEAVY: Dict[str, str] = {
    "mudeep": "a 134 M-parameter fc layer on the whole 256×128 map",
}
# First cases whose export alone is left to the slow sweep: graphs of timm's and torchvision's models, which those
# libraries export themselves, taking 6-12× as long as a ResNet-18's here.
HEAVY_EXPORT: Dict[str, str] = {
    "inceptionv4": "timm's Inception-v4",
    "densenet121": "torchvision's DenseNet-121",
    "nasnsetmobile": "timm's NASNet-A mobile, the slowest export here (many small branches)",
}

# Zoo models whose eval-mode graph does not export to ONNX: name → the op that prevents it.
ONNX_UNSUPPORTED: Dict[str, str] = {}


@dataclass(frozen=True)
class Case:
    """One architecture under test: a zoo entry (``zoo``) or a registered backbone no entry uses (``backbone``)."""

    kind: str
    name: str
    backbone: str
    input_size: Tuple[int, int]

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}"


def _quarter(size: Tuple[int, int]) -> Tuple[int, int]:
    return (max(32, size[0] // 4), max(16, size[1] // 4))


def _package_backbones() -> List[str]:
    # Tests and projects register toy backbones in the same registry; the zoo test covers the package's own.
    return sorted(name for name, builder in BACKBONE_REGISTRY if builder.__module__.startswith("fastreid."))


def _cases() -> List[Case]:
    cases = [
        Case("zoo", e.name, e.option("MODEL.BACKBONE.NAME"), SMALL_INPUT.get(e.name, _quarter(e.input_size)))
        for e in model_zoo()
    ]
    used = {c.backbone for c in cases}
    cases += [Case("backbone", b, b, SMALL_INPUT.get(b, (64, 32))) for b in _package_backbones() if b not in used]
    return cases


CASES = _cases()
# The first case of each backbone builder: builders differ in the ops they emit, the widths and depths of one
# family do not.
_FIRST_OF_BUILDER: Dict[str, Case] = {}
for _case in CASES:
    _FIRST_OF_BUILDER.setdefault(_case.backbone, _case)
FAST = {c.id for c in _FIRST_OF_BUILDER.values()} - {f"zoo:{name}" for name in HEAVY}
# Registered backbones outside the zoo (ResNeSt, ViT) export in the fast loop of tests/export already.
ONNX_FAST = {i for i in FAST if i.startswith("zoo:")} - {f"zoo:{name}" for name in HEAVY_EXPORT}


def _params(fast: Iterable[str]) -> list:
    return [pytest.param(c, id=c.id, marks=() if c.id in fast else (pytest.mark.slow,)) for c in CASES]


def _build(case: Case) -> nn.Module:
    """The model of ``case`` in training mode: a ``TorchreidModel`` for a zoo entry, else a ``Baseline``."""
    torch.manual_seed(0)
    if case.kind == "zoo":
        return build_model(case.name, NUM_CLASSES, loss="softmax", pretrained=False).train()
    cfg = get_cfg()
    size = list(case.input_size)
    cfg.merge_from_list([
        "MODEL.DEVICE", "cpu", "MODEL.BACKBONE.NAME", case.name, "MODEL.BACKBONE.PRETRAIN", False,
        "MODEL.HEADS.NUM_CLASSES", NUM_CLASSES, "INPUT.SIZE_TRAIN", size, "INPUT.SIZE_TEST", size,
        *STANDALONE_OPTIONS.get(case.name, ()),
    ])
    return build_fastreid_model(cfg).train()


def _calibrate_norms(model: nn.Module, run) -> None:
    """Set every BatchNorm's running statistics to those of the batch ``run()`` feeds.

    Fresh statistics make BatchNorm an identity in eval mode, which would let a deep random network's features
    overflow and an export that drops the norms go unnoticed.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: after one batch, exactly that batch's statistics
    run()
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


def _is_logits(x) -> bool:
    return isinstance(x, torch.Tensor) and x.shape == (BATCH_SIZE, NUM_CLASSES)


def _are_logits(x) -> bool:
    """B×K logits, or one B×K tensor per branch (PCB's parts, HACNN's global and local branches)."""
    return _is_logits(x) or (isinstance(x, (list, tuple)) and len(x) > 0 and all(_is_logits(y) for y in x))


def _are_features(x) -> bool:
    def is_feature(y):
        return isinstance(y, torch.Tensor) and y.dim() == 2 and y.shape[0] == BATCH_SIZE

    return is_feature(x) or (isinstance(x, (list, tuple)) and len(x) > 0 and all(is_feature(y) for y in x))


def _check_torchreid_contract(model: nn.Module, images: torch.Tensor, logits) -> None:
    """torchreid's models: softmax training returns logits, triplet training (logits, features), evaluation
    B×D features; models with several branches return one logits (and features) tensor per branch."""
    assert _are_logits(logits), f"softmax training must return B×{NUM_CLASSES} logits, got {type(logits).__name__}"
    model.loss = "triplet"
    with torch.no_grad():
        outputs = model(images)
    model.loss = "softmax"
    assert isinstance(outputs, tuple) and len(outputs) == 2, "triplet training must return (logits, features)"
    assert _are_logits(outputs[0]) and _are_features(outputs[1])


@pytest.mark.parametrize("case", _params(FAST))
def test_architecture_builds_trains_and_reports_its_channels(case: Case):
    model = _build(case)
    images = random_images(BATCH_SIZE, case.input_size)
    maps = []
    model.backbone.register_forward_hook(lambda module, inputs, output: maps.append(output))

    if case.kind == "zoo":
        logits = model(images / 255.0)
        terms = logits if isinstance(logits, (list, tuple)) else [logits]
        loss = sum(nn.functional.cross_entropy(x, torch.arange(BATCH_SIZE)) for x in terms)
    else:
        logits = None
        loss = sum(model({"images": images, "targets": torch.arange(BATCH_SIZE)}).values())
    loss.backward()

    assert math.isfinite(loss.item())
    fmap = maps[0]
    assert fmap.dim() == 4 and fmap.shape[0] == BATCH_SIZE, f"backbone output {tuple(fmap.shape)} is not B×C×h×w"
    assert fmap.shape[1] == model.backbone.out_channels, (fmap.shape, model.backbone.out_channels)
    no_grad = [n for n, p in model.backbone.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, f"backbone parameters the training step does not reach: {no_grad[:5]}"

    if case.kind == "zoo":
        _check_torchreid_contract(model, images / 255.0, logits)
    model.eval()
    with torch.no_grad():
        features = model(images / 255.0)
    assert isinstance(features, torch.Tensor) and features.dim() == 2 and features.shape[0] == BATCH_SIZE
    assert torch.isfinite(features).all()


# Module-type signatures of the models exported in this session (see the module docstring).
_EXPORTED: Dict[Tuple[str, FrozenSet[str]], str] = {}


def _signature(case: Case, model: nn.Module) -> Tuple[str, FrozenSet[str]]:
    return case.backbone, frozenset(type(m).__module__ + "." + type(m).__qualname__ for m in model.modules())


def _export_and_compare(case: Case, model: nn.Module, folder) -> Dict:
    # Eight images of the kind the exported graph is fed (0-255: FeatureExtractor hands them to the model as they
    # are): statistics of fewer, or of other inputs, leave deep features too large for a float32 comparison.
    images = random_images(8, case.input_size, seed=1)
    if case.kind == "zoo":
        run = lambda: model(images)  # noqa: E731
    else:
        run = lambda: model({"images": images, "targets": torch.arange(8) % NUM_CLASSES})  # noqa: E731
    with torch.no_grad():
        _calibrate_norms(model, run)
    extractor = FeatureExtractor(model)
    path = export_onnx(extractor, str(folder / f"{case.name}.onnx"), input_size=case.input_size,
                       batch_size=BATCH_SIZE, check=False, simplify=False)
    return check_agreement(extractor, OnnxFeatureExtractor(path, num_threads=1), case.input_size, (1, 3))


@pytest.mark.parametrize("case", _params(ONNX_FAST))
def test_onnx_export_matches_pytorch(case: Case, tmp_path):
    model = _build(case)
    signature = _signature(case, model)
    if signature in _EXPORTED and case.id not in ONNX_FAST:
        pytest.skip(f"same module types as {_EXPORTED[signature]}, exported above")
    if case.name in ONNX_UNSUPPORTED:
        with pytest.raises(Exception):
            _export_and_compare(case, model, tmp_path)
        return
    agreement = _export_and_compare(case, model, tmp_path)
    for batch_size, (max_abs_diff, min_cosine) in agreement.items():
        assert min_cosine > 0.9999, (batch_size, max_abs_diff, min_cosine)
    _EXPORTED[signature] = case.id


def test_tables_name_registered_architectures():
    """The tables above name only existing zoo models and backbones, so a rename cannot leave them stale."""
    zoo = {e.name for e in model_zoo()}
    assert set(ONNX_UNSUPPORTED) <= zoo
    assert set(SMALL_INPUT) <= zoo | set(_package_backbones())
    assert set(HEAVY) | set(HEAVY_EXPORT) <= zoo
    assert set(STANDALONE_OPTIONS) <= set(_package_backbones())
    assert set(_package_backbones()) <= {c.backbone for c in CASES}
    assert all(c.backbone in BACKBONE_REGISTRY for c in CASES)
