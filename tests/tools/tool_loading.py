"""Importing the scripts of ``tools/`` (not a package) in tests."""
import importlib.util
from pathlib import Path

TOOLS = Path(__file__).parents[2] / "tools"


def load_tool(name):
    """Imports ``tools/<name>.py`` (``name`` may name a sub-folder, e.g. ``deploy/onnx_export``) as a module."""
    spec = importlib.util.spec_from_file_location(f"fastreid_tool_{name.replace('/', '_')}", TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
