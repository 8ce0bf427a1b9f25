"""Projects use only fastreid's public API: no project file reaches a fastreid name or module starting with "_".

Checked on every Python file under projects/ (packages, scripts and tests), from the syntax tree:

* ``from fastreid.x import _name`` (a private name or module);
* ``import fastreid.x._mod`` and ``from fastreid.x._mod import name`` (a private module on the path);
* attribute access ``fastreid.x._y``, through any name bound by importing from fastreid
  (``import fastreid.data as d; d._y``, ``from fastreid.evaluation import rank; rank._y``);
* ``getattr(<fastreid name>, "_y")`` and ``importlib.import_module("fastreid.x._mod")``.

Dunder names (``__version__``, ``__init__``) are public. A project's own modules may be private to it.
"""
import ast
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "fastreid"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_path(dotted: str) -> bool:
    return any(_private(part) for part in dotted.split("."))


def _is_fastreid(module: str) -> bool:
    return module == PACKAGE or module.startswith(PACKAGE + ".")


def _fastreid_bindings(tree: ast.AST) -> Dict[str, str]:
    """Local name -> the fastreid module or object it was imported as."""
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_fastreid(alias.name):
                    # "import fastreid.data" binds "fastreid"; "import fastreid.data as d" binds "d".
                    bound[alias.asname or PACKAGE] = alias.name if alias.asname else PACKAGE
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _is_fastreid(node.module or ""):
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bound


def _attribute_chain(node: ast.Attribute):
    """("root name", ["attr", ...]) of ``root.a.b``, or (None, []) when the chain does not start at a name."""
    attrs: List[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    return (node.id, attrs[::-1]) if isinstance(node, ast.Name) else (None, [])


def private_uses(source: str, filename: str = "<string>") -> Iterator[str]:
    """The private fastreid names and modules that ``source`` reaches, as dotted paths."""
    tree = ast.parse(source, filename=filename)
    bound = _fastreid_bindings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if _is_fastreid(a.name) and _private_path(a.name))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _is_fastreid(node.module or ""):
            if _private_path(node.module):
                yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names if _private(a.name))
        elif isinstance(node, ast.Attribute):
            root, attrs = _attribute_chain(node)
            if root in bound and any(_private(a) for a in attrs):
                yield ".".join([bound[root], *attrs])
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[-1], ast.Constant):
            yield from _private_dynamic_access(node, bound)


def _private_dynamic_access(call: ast.Call, bound: Dict[str, str]) -> Iterator[str]:
    func, value = call.func, call.args[-1].value
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if not isinstance(value, str):
        return
    if name == "getattr" and len(call.args) >= 2 and isinstance(call.args[0], ast.Name):
        if call.args[0].id in bound and _private(value):
            yield f"{bound[call.args[0].id]}.{value}"
    elif name == "import_module" and _is_fastreid(value) and _private_path(value):
        yield value


def _dedupe_chains(uses: Iterator[str]) -> List[str]:
    """One entry per chain: ``fastreid._a.b`` is also seen as ``fastreid._a``; keep the longest."""
    found = sorted(set(uses))
    return [u for u in found if not any(other.startswith(u + ".") for other in found)]


def _project_files() -> List[Path]:
    return sorted((REPO / "projects").glob("*/**/*.py"))


def test_no_project_uses_a_private_fastreid_name():
    files = _project_files()
    assert len({p.relative_to(REPO / "projects").parts[0] for p in files}) >= 4  # the check sees the projects
    found = [f"{p.relative_to(REPO)}: {use}" for p in files
             for use in _dedupe_chains(private_uses(p.read_text(), str(p)))]
    assert found == [], "projects must import only fastreid's public names:\n" + "\n".join(found)


BAD = """
import fastreid.evaluation._hidden
import fastreid.data as data_api
from fastreid.evaluation.rank import _GalleryGroups, evaluate_rank
from fastreid.utils._impl import helper
from fastreid.modeling import meta_arch as ma
import fastreid
import importlib

fastreid.data.datasets._junk
data_api.build._private_fn()
data_api._single
ma.Baseline._secret
getattr(data_api, "_other")
importlib.import_module("fastreid._dynamic")
"""

GOOD = """
from __future__ import annotations
import fastreid
from fastreid.modeling import META_ARCH_REGISTRY
from fastreid.modeling.meta_arch import __init__
from ._local import thing
import torch._dynamo

print(fastreid.__version__, META_ARCH_REGISTRY.get("Baseline").forward)
self._cache = thing._x
getattr(thing, "_y")
torch._dynamo.reset()
"""


def test_the_check_sees_every_kind_of_private_use():
    assert _dedupe_chains(private_uses(BAD)) == sorted([
        "fastreid._dynamic",
        "fastreid.data._other",
        "fastreid.data._single",
        "fastreid.data.build._private_fn",
        "fastreid.data.datasets._junk",
        "fastreid.evaluation._hidden",
        "fastreid.evaluation.rank._GalleryGroups",
        "fastreid.modeling.meta_arch.Baseline._secret",
        "fastreid.utils._impl",
    ])


def test_the_check_accepts_public_dunder_and_non_fastreid_names():
    assert list(private_uses(GOOD)) == []


@pytest.mark.parametrize("line", ["from fastreid.data.common import _x", "import fastreid._c as c",
                                  "import fastreid\nfastreid.engine._trainer",
                                  "from fastreid import data\ndata._x"])
def test_one_bad_line_fails_the_check(line):
    assert list(private_uses(line)) != []
