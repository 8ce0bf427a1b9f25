"""Make the fast-reid oracle fixtures of tests/modeling/test_fastreid_parity.py (run once, by hand, outside CI).

Reference: ``fastreid==1.4.0`` from the package index (the pip packaging of JDAI-CV/fast-reid; its
``__version__`` string says "1.3"), installed outside the project with the light dependencies its model code
imports, and run with the project's interpreter on fast-reid's own published recipes:

    /work/main/.venv/bin/python -m pip install --no-deps --target /tmp/refs/fastreid \\
        fastreid==1.4.0 yacs pyyaml termcolor tabulate
    PYTHONPATH=/tmp/refs/fastreid /work/main/.venv/bin/python tools/dev/make_fastreid_fixtures.py \\
        [--recipes /work/shared/reference-configs/fast-reid] [case ...]

For each case of tests/fixtures/reference/fastreid/cases.py it builds fast-reid's model with fast-reid's
``get_cfg`` / ``build_model`` from the recipe and the case's options, fills every tensor of its state dict with
that file's formula, runs it in eval mode on the case's input batch, and writes
``tests/fixtures/reference/fastreid/<case>.pt``: the features, and fast-reid's state-dict names, shapes and
dtypes (compressed into a uint8 tensor; the file holds only tensors and strings: loads with
``weights_only=True``).

Run-time shim (in this script; the reference files are untouched): fastreid's own package is also called
``fastreid`` and installed editable, so its meta-path finder and the /work/main entries of ``sys.path`` are
removed before the reference is imported, and ``fastreid.__file__`` is checked to be the reference's. fast-reid
1.4.0's model code runs unchanged on torch 2.14.
"""
import argparse
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "fixtures" / "reference" / "fastreid"
DEFAULT_RECIPES = Path("/work/shared/reference-configs/fast-reid")


def _load_cases():
    spec = importlib.util.spec_from_file_location("fastreid_fixture_cases", OUT / "cases.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _import_reference():
    """fast-reid's ``get_cfg`` and ``build_model``, never this project's package of the same name."""
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable___fastreid" not in repr(f)]
    sys.path[:] = [p for p in sys.path if not Path(p or ".").resolve().is_relative_to(REPO) or "/.venv/" in p]
    import fastreid
    from fastreid.config import get_cfg
    from fastreid.modeling import build_model

    assert not Path(fastreid.__file__).resolve().is_relative_to(REPO), fastreid.__file__
    return get_cfg, build_model


def make_fixture(name: str, cases, recipes: Path, get_cfg, build_model):
    import torch

    recipe, _, _ = cases.CASES[name]
    cfg = get_cfg()
    cfg.merge_from_file(str(recipes / recipe))
    cfg.merge_from_list(cases.case_opts(name))
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    keys = [(k, list(v.shape), str(v.dtype).replace("torch.", "")) for k, v in model.state_dict().items()]
    model.load_state_dict(cases.recipe_weights(keys), strict=True)
    with torch.no_grad():
        features = model(cases.input_images(name).clone())  # fast-reid normalises its input in place
    record = {
        "reference": "fastreid==1.4.0",
        "recipe": recipe,
        "keys": cases.encode_keys(keys),
        "features": features.float().contiguous(),
    }
    torch.save(record, OUT / f"{name}.pt")
    print(f"{name}: features {tuple(features.shape)}, {len(keys)} tensors, max |f| {features.abs().max():.4g}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    parser.add_argument("--recipes", type=Path, default=DEFAULT_RECIPES, help="fast-reid's configs/ folder")
    args = parser.parse_args()
    cases = _load_cases()
    get_cfg, build_model = _import_reference()
    for name in args.cases or list(cases.CASES):
        make_fixture(name, cases, args.recipes, get_cfg, build_model)


if __name__ == "__main__":
    main()
