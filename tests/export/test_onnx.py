"""ONNX export of every backbone family, head pooling and meta-architecture, checked with onnxruntime."""
import sys
import types

import numpy as np
import onnx
import pytest

from fastreid.export import INPUT_NAME, OUTPUT_NAME, OnnxFeatureExtractor, check_agreement, export_onnx
from fastreid.layers.pooling import POOLING_REGISTRY

from .conftest import INPUT_SIZE, make_model

# Tracing warns about shape checks (IBN's channel count, MGN's stripe height); those dimensions are fixed in
# the exported graph, and the feature comparisons below are what guards the result.
pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")

# (id, config overrides, feature dim): small members of each family at the 64×32 input.
FAMILIES = [
    ("R18", ["MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.FEAT_DIM", "512"], 512),
    (
        "R18-ibn-se-gemP-reduce",
        [
            "MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.FEAT_DIM", "512",
            "MODEL.BACKBONE.WITH_IBN", "True", "MODEL.BACKBONE.WITH_SE", "True",
            "MODEL.HEADS.POOL_LAYER", "GeneralizedMeanPoolingP", "MODEL.HEADS.EMBEDDING_DIM", "64",
        ],
        64,
    ),
    (
        "X50-ibn-nl",
        [
            "MODEL.BACKBONE.NAME", "build_resnext_backbone", "MODEL.BACKBONE.WITH_IBN", "True",
            "MODEL.BACKBONE.WITH_NL", "True", "MODEL.HEADS.POOL_LAYER", "GeneralizedMeanPooling",
            # Wide blocks: with fast-reid's one inner channel, random weights' cubic non-local products
            # overflow float32 through stage 3's three blocks (trained blocks start as identities).
            "MODEL.BACKBONE.NL_INTER_CHANNELS", "0",
        ],
        2048,
    ),
    ("S50", ["MODEL.BACKBONE.NAME", "build_resnest_backbone"], 2048),
    ("ViT-tiny", ["MODEL.BACKBONE.NAME", "build_export_test_tiny_vit", "MODEL.HEADS.POOL_LAYER", "Identity"], 32),
    (
        "MGN-R18",
        [
            "MODEL.META_ARCHITECTURE", "MGN", "MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.FEAT_DIM", "512",
            "MODEL.HEADS.EMBEDDING_DIM", "32",
        ],
        8 * 32,
    ),
]


def _export_and_compare(tmp_path, opts, batch_sizes=(1, 3)):
    model = make_model(opts)
    path = export_onnx(model, str(tmp_path / "model.onnx"), input_size=INPUT_SIZE, batch_size=2)
    runner = OnnxFeatureExtractor(path, num_threads=1)
    return model, path, runner, check_agreement(model, runner, INPUT_SIZE, batch_sizes)


@pytest.mark.parametrize("opts,dim", [f[1:] for f in FAMILIES], ids=[f[0] for f in FAMILIES])
def test_onnx_features_match_pytorch_with_a_dynamic_batch(tmp_path, opts, dim):
    _, path, runner, agreement = _export_and_compare(tmp_path, opts)
    assert set(agreement) == {1, 3}
    for batch_size, (max_abs_diff, min_cosine) in agreement.items():
        assert min_cosine > 0.9999, (batch_size, max_abs_diff, min_cosine)
    assert runner.input_size == INPUT_SIZE
    assert runner(np.zeros((3, 3, *INPUT_SIZE), np.float32)).shape == (3, dim)
    graph = onnx.load(path).graph
    assert [i.name for i in graph.input] == [INPUT_NAME] and [o.name for o in graph.output] == [OUTPUT_NAME]
    batch_axis = graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_axis.dim_param == "batch" and not batch_axis.HasField("dim_value")


# Every registered pooling layer (aliases resolve to these) on a tiny backbone; "Identity" keeps the map, so
# the head's feature is its top-left cell, which the export must reproduce as well. "Flatten" is left out:
# it only fits backbones whose map is already 1×1 (the head's neck expects the backbone's channel count).
POOLINGS = sorted(name for name, _ in POOLING_REGISTRY if name != "Flatten")


@pytest.mark.parametrize("pool", POOLINGS)
def test_every_pooling_layer_exports(tmp_path, pool):
    opts = ["MODEL.BACKBONE.NAME", "build_export_test_tiny_backbone", "MODEL.HEADS.POOL_LAYER", pool]
    _, _, _, agreement = _export_and_compare(tmp_path, opts, batch_sizes=(3,))
    assert agreement[3].min_cosine > 0.9999, agreement


def test_the_exported_graph_normalises_raw_pixels(tmp_path):
    """Two models differing only in PIXEL_MEAN give different ONNX features for the same 0-255 input."""
    opts = ["MODEL.BACKBONE.NAME", "build_export_test_tiny_backbone"]
    a = OnnxFeatureExtractor(export_onnx(make_model(opts), str(tmp_path / "a.onnx"), input_size=INPUT_SIZE))
    shifted = make_model(opts + ["MODEL.PIXEL_MEAN", "[0.0, 0.0, 0.0]"])
    b = OnnxFeatureExtractor(export_onnx(shifted, str(tmp_path / "b.onnx"), input_size=INPUT_SIZE))
    images = np.full((1, 3, *INPUT_SIZE), 128.0, np.float32)
    assert not np.allclose(a(images), b(images), atol=1e-3)


def test_simplification_runs_when_onnxsim_is_importable(tmp_path, monkeypatch):
    calls = []

    def simplify(model):
        calls.append(model)
        return model, True

    monkeypatch.setitem(sys.modules, "onnxsim", types.SimpleNamespace(simplify=simplify))
    opts = ["MODEL.BACKBONE.NAME", "build_export_test_tiny_backbone"]
    path = export_onnx(make_model(opts), str(tmp_path / "m.onnx"), input_size=INPUT_SIZE)
    assert len(calls) == 1 and isinstance(calls[0], onnx.ModelProto)
    onnx.checker.check_model(path)


def test_simplification_is_skipped_without_onnxsim(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxsim", None)  # import raises ImportError
    opts = ["MODEL.BACKBONE.NAME", "build_export_test_tiny_backbone"]
    with caplog.at_level("INFO", logger="fastreid.export"):
        export_onnx(make_model(opts), str(tmp_path / "m.onnx"), input_size=INPUT_SIZE)
    assert "onnxsim is not installed" in caplog.text
