"""Make the torchreid oracle fixtures of tests/modeling/test_torchreid_parity.py (run once, by hand, outside CI).

Reference: ``torchreid==0.2.5`` from the package index (the pip packaging of KaiyangZhou/deep-person-reid; its
``torchreid.reid.models`` is deep-person-reid's model code), installed outside the project and run with the
project's interpreter:

    /work/main/.venv/bin/python -m pip install --no-deps --target /tmp/refs/torchreid torchreid==0.2.5
    PYTHONPATH=/tmp/refs/torchreid /work/main/.venv/bin/python tools/dev/make_torchreid_fixtures.py

For each architecture it builds torchreid's model with ``build_model(name, num_classes, pretrained=False)``,
fills it with the formula of tests/fixtures/reference/torchreid/weights.py, runs it in eval mode on that file's
input batch normalised as torchreid does (``ToTensor`` then ImageNet ``Normalize``), and writes
``tests/fixtures/reference/torchreid/<name>.pt``: the features, the classifier's logits on them, the input
size and torchreid's state-dict keys (plain tensors, lists and strings: loads with ``weights_only=True``).

Run-time shims (in this script, the reference files are untouched): fastreid's own package is also called
``fastreid`` and installed editable, so its finder and /work/main path entries are removed first (torchreid
does not import it, but the reference must run alone); ``torchreid/__init__.py`` imports the whole library
(datasets need scipy, gdown, ...), so the ``torchreid`` and ``torchreid.reid`` packages are registered as
empty namespaces and only ``torchreid.reid.models`` (which needs only torch) is executed.
"""
import runpy
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "fixtures" / "reference" / "torchreid"
ARCHITECTURES = ("resnet50", "resnet50_fc512", "osnet_x1_0", "osnet_x0_75", "osnet_x0_5", "osnet_x0_25", "osnet_ibn_x1_0",
                 "osnet_ain_x1_0", "osnet_ain_x0_75", "osnet_ain_x0_5", "osnet_ain_x0_25")
NUM_CLASSES = 5
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _isolate_reference():
    """Import torchreid's model package alone, never fastreid's (see the module docstring)."""
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable___fastreid" not in repr(f)]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO]
    root = next(Path(p) / "torchreid" for p in sys.path if (Path(p) / "torchreid" / "reid" / "models").is_dir())
    for name, path in (("torchreid", root), ("torchreid.reid", root / "reid")):
        package = types.ModuleType(name)
        package.__path__ = [str(path)]
        sys.modules[name] = package
    import torchreid.reid.models as models

    assert models.__file__.startswith(str(root)), models.__file__
    assert "fastreid" not in sys.modules
    return models


def main():
    models = _isolate_reference()
    formula = types.SimpleNamespace(**runpy.run_path(str(OUT / "weights.py")))
    import torch

    torch.set_num_threads(1)
    images = formula.input_batch()
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    normalised = (images / 255.0 - mean) / std
    for name in ARCHITECTURES:
        model = models.build_model(name, NUM_CLASSES, pretrained=False, use_gpu=False)
        state = model.state_dict()
        weights = formula.deterministic_state_dict((k, tuple(v.shape), v.dtype) for k, v in state.items())
        model.load_state_dict(weights)
        model.eval()
        with torch.no_grad():
            features = model(normalised)
            logits = model.classifier(features)
        torch.save(
            {
                "features": features.float().contiguous(),
                "logits": logits.float().contiguous(),
                "input_size": list(images.shape),
                "num_classes": NUM_CLASSES,
                "state_dict_keys": list(state),
                "reference": "torchreid==0.2.5",
            },
            OUT / f"{name}.pt",
        )
        print(f"{name}: features {tuple(features.shape)}, |max| {features.abs().max():.4g}, {len(state)} keys")


if __name__ == "__main__":
    main()
