"""The config node: yacs' ``CfgNode`` with ``_BASE_`` inheritance, schema translation and clear errors."""
import ast
import difflib
import functools
import inspect
import logging
import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import yaml
from yacs.config import CfgNode as _YacsCfgNode

from fastreid.utils.file_io import PathManager

BASE_KEY = "_BASE_"

logger = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A config file or override that cannot be merged into the config tree."""


def _where(source: Optional[str]) -> str:
    return f" (in {source})" if source else ""


class CfgNode(_YacsCfgNode):
    """A yacs ``CfgNode`` that merges fastreid and fast-reid config files.

    Compared with yacs, merging:

    * resolves ``_BASE_`` chains relative to the file that names them, and detects cycles;
    * translates fast-reid's later schema (``SOLVER.AMP.ENABLED``, ``INPUT.FLIP.ENABLED``, ...) onto this tree
      (see :mod:`fastreid.config.compat`) and logs it;
    * rejects an unknown key with an error naming the key, the file and the closest valid key;
    * coerces compatible types (int to float, list to tuple) and rejects the rest with a clear message.
    """

    def merge_from_file(self, cfg_filename: str, allow_unsafe: bool = False) -> None:
        """Merge a YAML file (and its ``_BASE_`` chain) into this node."""
        for path, loaded in load_yaml_chain(cfg_filename, allow_unsafe=allow_unsafe):
            _merge_dict_into(self, loaded, prefix="", source=path, root=self)

    def merge_from_list(self, cfg_list: Sequence[Any]) -> None:
        """Merge ``[KEY, VALUE, KEY, VALUE, ...]`` overrides, e.g. from the command line.

        String values are parsed as Python literals where the key's default is not a string.
        """
        if len(cfg_list) % 2 != 0:
            raise ConfigError(
                f"Overrides must come in KEY VALUE pairs; got an odd number of items: {list(cfg_list)}"
            )
        nested: Dict[str, Any] = {}
        for full_key, value in zip(cfg_list[0::2], cfg_list[1::2]):
            node = nested
            *parents, leaf = str(full_key).split(".")
            for part in parents:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"Override '{full_key}' conflicts with an earlier override of '{part}'")
            node[leaf] = value
        self._merge_translated(nested, source="command-line overrides")

    def merge_from_other_cfg(self, cfg_other: "_YacsCfgNode") -> None:
        """Merge another config node into this one with the same checks as a file."""
        self._merge_translated(_to_plain_dict(cfg_other), source="another config")

    def _merge_translated(self, loaded: Dict[str, Any], source: str) -> None:
        from .compat import translate_config_dict

        translated, notes = translate_config_dict(loaded)
        if notes:
            logger.info(
                "Translated %s from fast-reid's later config schema: %s", source, "; ".join(notes)
            )
        _merge_dict_into(self, translated, prefix="", source=source, root=self)

    def full_keys(self) -> Iterator[str]:
        """Yield every leaf key of the tree in dotted form."""
        for key, value in self.items():
            if isinstance(value, _YacsCfgNode):
                for sub in CfgNode.full_keys(value):
                    yield f"{key}.{sub}"
            else:
                yield key

    def dump(self, **kwargs) -> str:
        """Dump the tree as YAML (tuples are written as lists and come back as tuples on merge)."""
        kwargs.setdefault("sort_keys", False)
        return yaml.safe_dump(_to_plain_dict(self, tuples_as_lists=True), **kwargs)


def _to_plain_dict(node: Any, tuples_as_lists: bool = False) -> Any:
    if isinstance(node, dict):
        return {k: _to_plain_dict(v, tuples_as_lists) for k, v in node.items()}
    if tuples_as_lists and isinstance(node, tuple):
        return [_to_plain_dict(v, tuples_as_lists) for v in node]
    return node


def _suggest(root: _YacsCfgNode, full_key: str) -> str:
    candidates = list(CfgNode.full_keys(root))
    close = difflib.get_close_matches(full_key, candidates, n=1, cutoff=0.6)
    if not close:
        # A misspelt group name: compare the last component against leaf names in the same group.
        leaf = full_key.rsplit(".", 1)[-1]
        close = [c for c in candidates if c.rsplit(".", 1)[-1] == leaf][:1]
    return f"; did you mean '{close[0]}'?" if close else ""


def _merge_dict_into(node: _YacsCfgNode, loaded: Dict[str, Any], prefix: str, source: str, root) -> None:
    for key, value in loaded.items():
        full_key = f"{prefix}{key}"
        if key not in node:
            if node.is_new_allowed():
                node[key] = CfgNode(value) if isinstance(value, dict) else value
                continue
            raise ConfigError(f"Unknown config key '{full_key}'{_where(source)}{_suggest(root, full_key)}")
        current = node[key]
        if isinstance(current, _YacsCfgNode):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"Config key '{full_key}'{_where(source)} is a group of keys "
                    f"({', '.join(sorted(current.keys()))}); it cannot be set to {value!r}"
                )
            _merge_dict_into(current, value, f"{full_key}.", source, root)
        else:
            node[key] = coerce_value(value, current, full_key, source)


def coerce_value(value: Any, default: Any, full_key: str, source: Optional[str] = None) -> Any:
    """Convert ``value`` to the type of ``default`` where that is lossless, else raise ``ConfigError``.

    Strings are parsed as Python literals when the default is not a string (``"(1, 2)"`` becomes a tuple),
    ints become floats, and lists and tuples convert into each other.
    """
    if isinstance(value, str) and not isinstance(default, str) and default is not None:
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass
    if default is None or value is None:
        return value
    if isinstance(default, bool) or isinstance(value, bool):
        if isinstance(default, bool) and isinstance(value, bool):
            return value
    elif isinstance(default, float) and isinstance(value, (int, float)):
        return float(value)
    elif isinstance(default, int) and isinstance(value, int):
        return value
    elif isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)):
        return type(default)(value)
    elif isinstance(default, (list, tuple)) and isinstance(value, str) and isinstance(default, tuple):
        # fast-reid files write one-element tuples as a bare name, e.g. NAMES: Market1501.
        return (value,)
    elif isinstance(default, str) and isinstance(value, str):
        return value
    raise ConfigError(
        f"Config key '{full_key}'{_where(source)} expects a {type(default).__name__} "
        f"(default {default!r}), got {type(value).__name__} {value!r}"
    )


def load_yaml_chain(filename: str, allow_unsafe: bool = False, _chain: Tuple[str, ...] = ()) -> List[Tuple[str, Dict[str, Any]]]:
    """Load a YAML config file and the files its ``_BASE_`` key names, recursively.

    ``_BASE_`` paths are relative to the directory of the file that names them. Each file is translated
    from fast-reid's later schema on its own, so a base and a child may use different schemas.

    Returns:
        ``(path, mapping)`` pairs, the deepest base first and ``filename`` last, without ``_BASE_`` keys.

    Raises:
        ConfigError: when a file is missing or unparsable, is not a mapping, or the chain has a cycle.
    """
    from .compat import translate_config_dict

    resolved = os.path.abspath(filename) if "://" not in filename else filename
    if resolved in _chain:
        cycle = " -> ".join(list(_chain) + [resolved])
        raise ConfigError(f"_BASE_ cycle in config files: {cycle}")
    if not PathManager.exists(filename):
        hint = f" (named by _BASE_ in {_chain[-1]})" if _chain else ""
        raise ConfigError(f"Config file not found: {filename}{hint}")
    with PathManager.open(filename, "r") as f:
        text = f.read()
    try:
        loaded = yaml.unsafe_load(text) if allow_unsafe else yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"Cannot parse config file {filename}: {e}") from e
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"Config file {filename} must hold a mapping of keys, got {type(loaded).__name__}")

    loaded, notes = translate_config_dict(loaded)
    if notes:
        logger.info("Translated %s from fast-reid's later config schema: %s", filename, "; ".join(notes))

    base_name = loaded.pop(BASE_KEY, None)
    if base_name is None:
        return [(filename, loaded)]
    base_name = os.path.expanduser(str(base_name))
    if not os.path.isabs(base_name) and "://" not in base_name:
        base_name = os.path.join(os.path.dirname(filename), base_name)
    chain = load_yaml_chain(base_name, allow_unsafe=allow_unsafe, _chain=_chain + (resolved,))
    return chain + [(filename, loaded)]


def load_yaml_with_base(filename: str, allow_unsafe: bool = False) -> Dict[str, Any]:
    """Load a YAML config file with its ``_BASE_`` chain merged underneath it, as one mapping."""
    merged: Dict[str, Any] = {}
    for _, loaded in load_yaml_chain(filename, allow_unsafe=allow_unsafe):
        _deep_update(merged, loaded)
    return merged


def _deep_update(base: Dict[str, Any], override: Dict[str, Any]) -> Dict[str, Any]:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value
    return base


def get_cfg() -> CfgNode:
    """Return a fresh copy of the default config tree (:mod:`fastreid.config.defaults`)."""
    from .defaults import DEFAULT_CONFIG

    return DEFAULT_CONFIG.clone()


# --------------------------------------------------------------------------------------------------
# configurable / from_config
# --------------------------------------------------------------------------------------------------
def configurable(init_func: Optional[Callable] = None, *, from_config: Optional[Callable] = None):
    """Let a class or function be called either with a config or with explicit arguments.

    On a class ``__init__`` (``@configurable`` without arguments) the class provides
    ``from_config(cls, cfg, ...)`` returning a dict of ``__init__`` keyword arguments; on a function
    (``@configurable(from_config=fn)``) ``fn(cfg, ...)`` plays that role. A call whose first argument
    (or ``cfg=`` keyword) is a :class:`CfgNode` is routed through ``from_config``; any other call goes
    straight to the wrapped callable.

    Example::

        class Head(nn.Module):
            @configurable
            def __init__(self, *, in_feat: int, num_classes: int): ...

            @classmethod
            def from_config(cls, cfg, in_feat):
                return {"in_feat": in_feat, "num_classes": cfg.MODEL.HEADS.NUM_CLASSES}

        Head(cfg, in_feat=2048)             # from the config
        Head(in_feat=2048, num_classes=10)  # explicit
    """
    if init_func is not None:
        if from_config is not None or init_func.__name__ != "__init__":
            raise TypeError("@configurable without arguments decorates __init__; use @configurable(from_config=fn)")

        @functools.wraps(init_func)
        def wrapped_init(self, *args, **kwargs):
            if _called_with_cfg(*args, **kwargs):
                maker = getattr(type(self), "from_config", None)
                if maker is None or not inspect.ismethod(maker):
                    raise AttributeError(
                        f"{type(self).__name__} was called with a config but has no classmethod from_config"
                    )
                init_func(self, **_call_from_config(maker, *args, **kwargs))
            else:
                init_func(self, *args, **kwargs)

        return wrapped_init

    if from_config is None:
        raise TypeError("@configurable(...) on a function needs from_config=")

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapped(*args, **kwargs):
            if _called_with_cfg(*args, **kwargs):
                return func(**_call_from_config(from_config, *args, **kwargs))
            return func(*args, **kwargs)

        wrapped.from_config = from_config
        return wrapped

    return decorator


def _called_with_cfg(*args, **kwargs) -> bool:
    if args and isinstance(args[0], _YacsCfgNode):
        return True
    return isinstance(kwargs.get("cfg"), _YacsCfgNode)


def _call_from_config(maker: Callable, *args, **kwargs) -> Dict[str, Any]:
    """Call ``maker`` with the arguments it accepts; the others are passed through as explicit kwargs."""
    params = inspect.signature(maker).parameters
    if params and next(iter(params)) != "cfg":
        raise TypeError(f"{getattr(maker, '__qualname__', maker)} must take 'cfg' as its first argument")
    takes_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if takes_var_kw:
        return maker(*args, **kwargs)
    accepted = {k: v for k, v in kwargs.items() if k in params}
    extra = {k: v for k, v in kwargs.items() if k not in params}
    result = maker(*args, **accepted)
    result.update(extra)
    return result
