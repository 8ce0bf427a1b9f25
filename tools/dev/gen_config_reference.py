#!/usr/bin/env python
"""Generate docs/config_reference.md from the default config tree and the comments in its source file.

    python tools/dev/gen_config_reference.py            # (re)write docs/config_reference.md
    python tools/dev/gen_config_reference.py --check    # exit 1 when docs/config_reference.md is stale

Every leaf of ``fastreid.config.get_cfg()`` gets a row: key, default, type and meaning. The meaning is the
comment block directly above the key's assignment in ``fastreid/config/defaults.py`` (banner lines dropped);
a key without one shares the comment of the key or group assigned on the line just before it, so one comment
can describe a paragraph of related keys. A default computed from the environment (such as MODEL.DEVICE) is
shown as its source expression, so the page is the same on every machine.
"""
import argparse
import ast
import re
import sys
import tokenize
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = REPO / "fastreid" / "config" / "defaults.py"
OUTPUT = REPO / "docs" / "config_reference.md"
ROOT = "_C"
_SEPARATOR = re.compile(r"^#\s*[-=*~]{3,}[\s#]*$")


@dataclass
class KeySource:
    """What the source file says about one assigned key."""

    comment: str
    expression: Optional[str] = None  # source of an environment-dependent default, else None
    shared_with: Optional[str] = None  # the key whose comment this one shares (assigned just before it)


def _assigned_key(stmt: ast.stmt) -> Optional[str]:
    """"MODEL.DEVICE" for ``_C.MODEL.DEVICE = ...``; None for any other statement."""
    if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1:
        return None
    parts = []
    node = stmt.targets[0]
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not (isinstance(node, ast.Name) and node.id == ROOT and parts):
        return None
    return ".".join(reversed(parts))


def _comments(source: str) -> Tuple[Dict[int, str], Dict[int, str]]:
    """Full-line and trailing comments by line number (1-based), without the leading "#"."""
    full, trailing = {}, {}
    lines = source.splitlines()
    for tok in tokenize.generate_tokens(StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            is_full = not lines[row - 1][:col].strip()
            (full if is_full else trailing)[row] = tok.string
    return full, trailing


def _block_above(lineno: int, full: Dict[int, str]) -> str:
    """The comment block ending on the line above ``lineno``, after its last banner separator."""
    block: List[str] = []
    row = lineno - 1
    while row in full:
        block.append(full[row])
        row -= 1
    block.reverse()
    separators = [i for i, line in enumerate(block) if _SEPARATOR.match(line)]
    if separators:
        block = block[separators[-1] + 1 :]
    return " ".join(line.lstrip("#").strip() for line in block).strip()


def _depends_on_environment(value: ast.expr) -> bool:
    return any(isinstance(n, (ast.Name, ast.Attribute, ast.Call)) for n in ast.walk(value))


def parse_defaults(source: str) -> Dict[str, KeySource]:
    """Map every key assigned in the defaults source (leaves and groups) to its comment and expression."""
    full, trailing = _comments(source)
    result: Dict[str, KeySource] = {}
    previous: Optional[Tuple[int, str]] = None  # (end line, key) of the last assignment
    for stmt in ast.parse(source).body:
        key = _assigned_key(stmt)
        if key is None:
            previous = None
            continue
        inline = trailing.get(stmt.lineno, "").lstrip("# ")
        doc = KeySource(" ".join(filter(None, [_block_above(stmt.lineno, full), inline])))
        if not doc.comment and previous is not None and previous[0] == stmt.lineno - 1:
            before = result[previous[1]]
            doc = KeySource(before.comment, shared_with=before.shared_with or previous[1])
        is_group = isinstance(stmt.value, ast.Call) and getattr(stmt.value.func, "id", "") == "CN"
        if not is_group and _depends_on_environment(stmt.value):
            doc.expression = ast.get_source_segment(source, stmt.value)
        result[key] = doc
        previous = (stmt.end_lineno, key)
    return result


def _type_name(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        kinds = sorted({_type_name(v) for v in value})
        return f"{type(value).__name__}[{kinds[0]}]" if len(kinds) == 1 else type(value).__name__
    return type(value).__name__


def _format(value: Any) -> str:
    """Python-like literal of a default, floats in shortest round-trip-free form (57.12, not 57.120000000000005)."""
    if isinstance(value, float):
        text = format(value, ".10g")
        return text if any(c in text for c in ".eninf") else text + ".0"
    if isinstance(value, list):
        return "[" + ", ".join(_format(v) for v in value) + "]"
    if isinstance(value, tuple):
        items = [_format(v) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    return repr(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def _leaf_row(key: str, value: Any, sources: Dict[str, KeySource]) -> str:
    src = sources.get(key, KeySource(""))
    default = f"{_code(src.expression)} (computed)" if src.expression else _code(_format(value))
    meaning = src.comment
    if src.shared_with is not None and src.shared_with == key.rpartition(".")[0]:
        meaning = "See the group description."
    return f"| `{key}` | {_cell(default)} | {_type_name(value)} | {_cell(meaning) or '—'} |"


def _table(prefix: str, node: Any, sources: Dict[str, KeySource]) -> List[str]:
    leaves = [(k, v) for k, v in node.items() if not isinstance(v, dict)]
    if not leaves:
        return []
    rows = ["| Key | Default | Type | Meaning |", "|---|---|---|---|"]
    rows += [_leaf_row(prefix + k, v, sources) for k, v in leaves]
    return rows + [""]


def _groups(prefix: str, node: Any, sources: Dict[str, KeySource], depth: int) -> List[str]:
    out: List[str] = []
    for name, child in node.items():
        if not isinstance(child, dict):
            continue
        key = prefix + name
        out += [f"{'#' * min(depth + 1, 4)} {key}", ""]
        description = sources.get(key, KeySource("")).comment
        if description:
            out += [description, ""]
        out += _table(key + ".", child, sources)
        out += _groups(key + ".", child, sources, depth + 1)
    return out


def render(cfg=None, source: Optional[str] = None) -> str:
    """The Markdown page for ``cfg`` (default: ``get_cfg()``) documented by ``source`` (default: defaults.py)."""
    if cfg is None:
        from fastreid.config import get_cfg

        cfg = get_cfg()
    if source is None:
        source = DEFAULTS.read_text()
    sources = parse_defaults(source)
    intro = ast.get_docstring(ast.parse(source)) or ""
    lines = [
        "<!-- GENERATED by tools/dev/gen_config_reference.py from fastreid/config/defaults.py: do not edit. -->",
        "# Config reference",
        "",
        "Every key of the default config (`fastreid.config.get_cfg()`) with its default, type and meaning, "
        "grouped as in the tree. Meanings are the comments in `fastreid/config/defaults.py`; after editing that "
        "file run `python tools/dev/gen_config_reference.py` (the test suite fails while this page is stale).",
        "",
        intro,
        "",
        "## Top-level keys",
        "",
    ]
    lines += _table("", cfg, sources)
    lines += _groups("", cfg, sources, depth=1)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the page is up to date")
    parser.add_argument("--output", default=str(OUTPUT), help="the Markdown file to write or check")
    args = parser.parse_args(argv)
    text = render()
    output = Path(args.output)
    if args.check:
        if not output.exists() or output.read_text() != text:
            sys.stderr.write(f"{output} is stale: run python tools/dev/gen_config_reference.py\n")
            return 1
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
