"""The package build: the Cython ranking extension is compiled and importable."""
import importlib


def test_compiled_ranking_extension_imports():
    module = importlib.import_module("fastreid.evaluation.rank_cylib.rank_cy")
    assert module.__file__.endswith((".so", ".pyd")), f"{module.__file__} is not a compiled extension"


def test_subpackages_import_without_side_effects():
    for name in ["config", "data", "modeling", "layers", "solver", "engine", "evaluation", "utils"]:
        importlib.import_module(f"fastreid.{name}")
