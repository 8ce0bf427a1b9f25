"""TorchScript tracing: the traced module reproduces the eager model, also at another batch size."""
import pytest
import torch

from fastreid.export import check_agreement, export_torchscript

from .conftest import INPUT_SIZE, make_model

# Tracing warns about shape checks (IBN's channel count, MGN's stripe height); those dimensions are fixed in
# the exported graph, and the feature comparisons below are what guards the result.
# torch.jit itself is deprecated in favour of torch.export (FutureWarning), which the brief's format predates.
pytestmark = [
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
    pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning"),
]

CASES = {
    "R18-ibn-se": ["MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.WITH_IBN", "True", "MODEL.BACKBONE.WITH_SE", "True"],
    "ViT-tiny": ["MODEL.BACKBONE.NAME", "build_export_test_tiny_vit", "MODEL.HEADS.POOL_LAYER", "Identity"],
    "MGN-R18": ["MODEL.META_ARCHITECTURE", "MGN", "MODEL.BACKBONE.DEPTH", "18x", "MODEL.HEADS.EMBEDDING_DIM", "16"],
}


def _numpy_fn(module):
    return lambda images: module(torch.from_numpy(images)).numpy()


@pytest.mark.parametrize("opts", list(CASES.values()), ids=list(CASES))
def test_traced_model_matches_eager_and_reloads(tmp_path, opts):
    model = make_model(opts)
    path = str(tmp_path / "model.pt")
    traced = export_torchscript(model, path, input_size=INPUT_SIZE, batch_size=2)
    loaded = torch.jit.load(path)
    # The profiling executor re-optimises a traced graph over its first calls; plain execution is faster here.
    with torch.jit.optimized_execution(False):
        for module in (traced, loaded):
            agreement = check_agreement(model, _numpy_fn(module), INPUT_SIZE, batch_sizes=(1, 3))
            for max_abs_diff, min_cosine in agreement.values():
                assert max_abs_diff < 1e-3 and min_cosine > 0.99999, agreement
