"""docs/reliability.md stays true: every test it names exists."""
import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEXT = (REPO / "docs" / "reliability.md").read_text()


def _tests_named():
    """(file, test name) pairs: `tests/x.py::name` and the `::name` that follow it in the same cell."""
    pairs = []
    for cell in TEXT.split("|"):
        current = None
        for path, name in re.findall(r"`(tests/[\w/]+\.py)?(?:::(\w+))?", cell):
            current = path or current
            if current and name:
                pairs.append((current, name))
            elif path:
                pairs.append((path, None))
    return pairs


def test_every_test_the_guarantees_cite_exists():
    pairs = _tests_named()
    assert len([n for _, n in pairs if n]) > 30
    missing = []
    for path, name in pairs:
        file = REPO / path
        if not file.exists():
            missing.append(path)
            continue
        defined = {n.name for n in ast.walk(ast.parse(file.read_text())) if isinstance(n, ast.FunctionDef)}
        if name and name not in defined:
            missing.append(f"{path}::{name}")
    assert missing == []
