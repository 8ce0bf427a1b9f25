"""Which config keys the source code reads: a static (AST) check that no key of the tree goes unread.

A key counts as read when some source file has

* an attribute / subscript chain in load context whose trailing UPPER_CASE components end the key's path,
  with at least two of them (``cfg.MODEL.BACKBONE.DEPTH``, ``self.cfg.SOLVER.BASE_LR``,
  ``cfg.MODEL.BACKBONE["DEPTH"]``, ``cfg.MODEL.BACKBONE.get("DEPTH")``, ``getattr(cfg.TEST, "METRIC")``);
  a top-level key needs one component after a name ending in ``cfg`` or ``config`` (``cfg.SEED``);
* such a chain through a local alias: ``backbone = cfg.MODEL.BACKBONE`` then ``backbone.DEPTH`` in the same
  function (or an enclosing one, or the module);
* such a chain through a parameter of a function of the same module, for the groups its calls in that module
  pass (``_choose(cfg.TEST)`` and ``def _choose(test): test.EXACT_RANKING``);
* a subscript or ``getattr`` with a computed index, which stands for any UPPER_CASE string literal of the
  module (``cfg.MODEL.LOSSES[self.group].SCALE`` with ``group = "CIRCLE"`` reads ``MODEL.LOSSES.CIRCLE.SCALE``);
* or a string literal that is exactly the key's dotted path (``"SOLVER.BASE_LR"`` in a table or a lookup);
  f-strings (messages) do not count.

Assignments (``cfg.MODEL.HEADS.NUM_CLASSES = n``) are writes, not reads. The check is deliberately simple: it
over-estimates rather than misses (a name's aliases are all its assignments in the scope, whatever their
order), and a group handed to another module's function is not followed, so that code reads its keys through
a full chain or an alias.
"""
import ast
import re
from collections import ChainMap
from pathlib import Path
from typing import Dict, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple

__all__ = ["KeyReads", "find_key_reads", "source_files", "unread_keys"]

_KEY_PART = re.compile(r"^[A-Z][A-Z0-9_]*$")
_CFG_NAME = re.compile(r"(^|[_:])(cfg|config)$", re.IGNORECASE)
WILDCARD = "*"
_MAX_ALIAS_DEPTH = 8


class KeyReads:
    """What a set of source files reads.

    Attributes:
        patterns: ``(components, names)`` pairs: two or more trailing key components, e.g.
            ``("MODEL", "BACKBONE", "DEPTH")``, where ``"*"`` (a computed index) stands for any of ``names``, the
            UPPER_CASE string literals of the module the access is in.
        top_level: single components read right after a ``cfg``-like name, e.g. ``"SEED"``.
        strings: string literals that look like dotted key paths.
    """

    def __init__(self) -> None:
        self.patterns: Set[Tuple[Tuple[str, ...], FrozenSet[str]]] = set()
        self.top_level: Set[str] = set()
        self.strings: Set[str] = set()

    def reads(self, key: str) -> bool:
        """Whether ``key`` (dotted, e.g. "MODEL.BACKBONE.DEPTH") is read by one of the recorded accesses."""
        parts = tuple(key.split("."))
        if key in self.strings or (len(parts) == 1 and parts[0] in self.top_level):
            return True
        return any(_matches(parts, pattern, names) for pattern, names in self.patterns)


def _matches(parts: Tuple[str, ...], pattern: Tuple[str, ...], names: FrozenSet[str]) -> bool:
    if len(pattern) > len(parts):
        return False
    tail = parts[len(parts) - len(pattern):]
    return all(k == p or (p == WILDCARD and k in names) for p, k in zip(pattern, tail))


class _Param:
    """Scope entry of a function parameter: what it holds is known only from the module's calls."""

    def __init__(self, function: str, name: str) -> None:
        self.marker = f"<{function}:{name}>"


class _ModuleReads:
    """Collects the config-key reads of one parsed module into a :class:`KeyReads`."""

    def __init__(self, reads: KeyReads) -> None:
        self.reads = reads
        self.names: Set[str] = set()  # UPPER_CASE string literals of the module
        self.found: List[Tuple[str, ...]] = []
        self.param_reads: List[Tuple[str, Tuple[str, ...]]] = []  # (parameter marker, components read from it)
        self.arguments: Dict[str, List[List[str]]] = {}  # parameter marker -> key runs passed to it

    def collect(self, tree: ast.Module) -> None:
        self._walk(tree, ChainMap({}), {})
        for marker, tail in self.param_reads:
            self.found.extend(tuple(run) + tail for run in self.arguments.get(marker, ()))
        names = frozenset(self.names)
        for run in self.found:
            if len(run) >= 2:
                self.reads.patterns.add((run, names if WILDCARD in run else frozenset()))

    def _walk(self, node: ast.AST, scope: ChainMap, defs: Dict[str, List[str]]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                params = [a.arg for a in child.args.posonlyargs + child.args.args + child.args.kwonlyargs]
                defs.setdefault(child.name, params)
                inner = scope.new_child({p: [_Param(child.name, p)] for p in params})
                self._walk(child, inner, defs)
                continue
            if isinstance(child, ast.Lambda):
                self._walk(child, scope.new_child(), defs)
                continue
            if isinstance(child, ast.JoinedStr):
                # The literal parts of an f-string are a message, not a key lookup: only its fields are code.
                for part in child.values:
                    if isinstance(part, ast.FormattedValue):
                        self._walk(part, scope, defs)
                continue
            self._walk(child, scope, defs)
            if isinstance(child, (ast.Attribute, ast.Subscript)) and isinstance(child.ctx, ast.Load):
                self._record(child, scope)
            elif isinstance(child, ast.Call):
                self._record(child, scope)
                self._bind_arguments(child, scope, defs)
            elif isinstance(child, (ast.Assign, ast.AnnAssign, ast.NamedExpr)):
                self._alias(child, scope)
            elif isinstance(child, ast.Constant) and isinstance(child.value, str):
                self._string(child)

    def _bind_arguments(self, call: ast.Call, scope: ChainMap, defs: Dict[str, List[str]]) -> None:
        """Remember the config groups a call passes to a function of the module (``f(cfg.TEST)``)."""
        func = call.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name not in defs:
            return
        params = defs[name]
        if isinstance(func, ast.Attribute) and params[:1] in (["self"], ["cls"]):
            params = params[1:]
        bound = list(zip(params, call.args)) + [(k.arg, k.value) for k in call.keywords if k.arg]
        for param, arg in bound:
            run = _key_run(self._components(arg, scope) or [])
            if run:
                self.arguments.setdefault(f"<{name}:{param}>", []).append(run)

    @staticmethod
    def _alias(node: ast.AST, scope: ChainMap) -> None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if node.value is None:
            return
        for target in targets:
            if isinstance(target, ast.Name):
                scope.maps[0].setdefault(target.id, []).append(node.value)

    def _string(self, node: ast.Constant) -> None:
        parts = node.value.split(".")
        if all(_KEY_PART.match(p) for p in parts):
            if len(parts) > 1:
                self.reads.strings.add(node.value)
            else:
                self.names.add(node.value)

    def _components(self, node: ast.AST, scope: ChainMap, depth: int = 0) -> Optional[List[str]]:
        """The components of an access chain, local aliases expanded; None when ``node`` is no chain."""
        if depth > _MAX_ALIAS_DEPTH:
            return None
        if isinstance(node, _Param):
            return [node.marker]
        if isinstance(node, ast.Name):
            for value in scope.get(node.id, ()):
                expanded = self._components(value, scope, depth + 1)
                if expanded is not None and (isinstance(value, _Param) or any(_KEY_PART.match(c) for c in expanded)):
                    return expanded
            return [node.id]
        if isinstance(node, ast.Attribute):
            base = self._components(node.value, scope, depth)
            return None if base is None else base + [node.attr]
        if isinstance(node, ast.Subscript):
            base, index = self._components(node.value, scope, depth), node.slice
            if base is None or (isinstance(index, ast.Constant) and not isinstance(index.value, str)):
                return base  # an element of a list value, not a key
            return base + [index.value if isinstance(index, ast.Constant) else WILDCARD]
        if isinstance(node, ast.Call):
            func, args = node.func, node.args
            if isinstance(func, ast.Attribute) and func.attr == "get" and args:
                base, key = self._components(func.value, scope, depth), args[0]
            elif isinstance(func, ast.Name) and func.id in ("getattr", "hasattr") and len(args) >= 2:
                base, key = self._components(args[0], scope, depth), args[1]
            else:
                return None
            if base is None:
                return None
            return base + [key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else WILDCARD]
        return None

    def _record(self, node: ast.AST, scope: ChainMap) -> None:
        components = self._components(node, scope)
        if not components:
            return
        run = _key_run(components)
        if run and len(run) == len(components) - 1 and components[0].startswith("<"):
            self.param_reads.append((components[0], tuple(run)))
        if len(run) >= 2:
            self.found.append(tuple(run))
        elif len(run) == 1 and len(components) >= 2 and _CFG_NAME.search(components[-2].rstrip(">")):
            self.reads.top_level.add(run[0])


def _key_run(components: List[str]) -> List[str]:
    """The trailing UPPER_CASE (or computed) components of an access chain, without leading computed ones."""
    run: List[str] = []
    for part in reversed(components):
        if part != WILDCARD and not _KEY_PART.match(part):
            break
        run.append(part)
    run.reverse()
    while run and run[0] == WILDCARD:
        run.pop(0)
    return run


def find_key_reads(files: Iterable[Path]) -> KeyReads:
    """Parse ``files`` and collect the config-key reads in them (see the module docstring).

    Raises:
        SyntaxError: when a file does not parse.
    """
    reads = KeyReads()
    for path in files:
        _ModuleReads(reads).collect(ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path)))
    return reads


def source_files(roots: Sequence[Path], exclude: Sequence[Path] = ()) -> List[Path]:
    """Every ``*.py`` file under ``roots``, without the files in ``exclude``."""
    skipped = {Path(p).resolve() for p in exclude}
    return sorted(p for root in roots for p in Path(root).rglob("*.py") if p.resolve() not in skipped)


def unread_keys(keys: Iterable[str], reads: KeyReads) -> List[str]:
    """The keys of ``keys`` (dotted) that ``reads`` does not read, in their order."""
    return [key for key in keys if not reads.reads(key)]
