"""No module of the package, the tools or the projects imports another module's underscore-prefixed name."""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("fastreid", "tools", "projects")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            parts = (node.module or "").split(".")
            yield from (f"{node.module}.{a.name}" for a in node.names if _private(a.name))
            if any(_private(p) for p in parts):
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if any(_private(p) for p in a.name.split(".")))


def test_no_module_imports_a_private_name():
    files = [p for folder in SOURCES for p in (REPO / folder).rglob("*.py") if "tests" not in p.parts]
    assert len(files) > 100
    found = {f"{p.relative_to(REPO)}: {name}" for p in files for name in _private_imports(p)}
    assert sorted(found) == []


def test_the_check_sees_private_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from .rank import _GalleryGroups\nimport torch._dynamo\nfrom a import __version__, b\n")
    assert list(_private_imports(sample)) == ["rank._GalleryGroups", "torch._dynamo"]
