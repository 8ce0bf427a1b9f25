"""docs/extending.md stays true: its links resolve and the fastreid imports in its snippets work."""
import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "extending.md"
TEXT = DOC.read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)
IMPORTS = sorted({m for s in SNIPPETS for m in re.findall(r"^from (fastreid[\w.]*) import ([\w, ]+)$", s, re.M)})


def test_relative_links_resolve():
    targets = re.findall(r"\]\((?!https?:)([^)#]+)\)", TEXT)
    assert targets
    assert [t for t in targets if not (DOC.parent / t).exists()] == []


def test_project_tree_lists_existing_files():
    tree = re.search(r"```\n(projects/ToyProject/.*?)```", TEXT, flags=re.S).group(1)
    names = re.findall(r"[├└]── ([\w./]+)", tree)
    project = REPO / "projects" / "ToyProject"
    found = {p.relative_to(project).as_posix() for p in project.rglob("*")} | {p.name for p in project.rglob("*")}
    assert names and [n for n in names if n.rstrip("/") not in found] == []


@pytest.mark.parametrize("module,names", IMPORTS, ids=[m for m, _ in IMPORTS])
def test_snippet_imports_exist(module, names):
    imported = importlib.import_module(module)
    for name in (n.strip().split(" as ")[0] for n in names.split(",")):
        assert hasattr(imported, name), f"{module}.{name}"
