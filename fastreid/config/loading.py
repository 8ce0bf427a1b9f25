"""The one way to build a run's config: defaults, then a config file, then ``KEY VALUE`` overrides."""
import logging
from typing import Any, Iterable, List, Optional, Sequence, Tuple

from .config import CfgNode, ConfigError, get_cfg

__all__ = ["check_loaded_config", "load_config", "non_default_values"]

logger = logging.getLogger(__name__)


def load_config(config_file: str = "", opts: Sequence[Any] = (), *, base: Optional[CfgNode] = None,
                freeze: bool = True) -> CfgNode:
    """Merges ``config_file`` and then ``opts`` into ``base`` (default: a fresh :func:`get_cfg`).

    Every entry point builds its config here: training (``fastreid.engine.setup_cfg``), inference
    (``fastreid.predictor.load_inference_config``) and the tools.

    Args:
        config_file: a fastreid or fast-reid YAML file (``_BASE_`` chains allowed); ``""`` merges no file.
        opts: overrides as a flat ``[KEY, VALUE, KEY, VALUE, ...]`` list, e.g. from the command line; string
            values are parsed as Python literals where the key's default is not a string.
        base: the tree to merge into, in place; a project passes ``get_cfg()`` with its own keys added.
        freeze: freeze the tree before returning it (pass ``False`` to adjust it further, then freeze).

    Returns:
        The merged tree (``base`` itself when given).

    Raises:
        ConfigError: on a missing or invalid file, an unknown key, a badly typed value, an odd ``opts`` or
            another schema ``VERSION`` (see :func:`check_loaded_config`).
    """
    cfg = get_cfg() if base is None else base
    if config_file:
        cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    check_loaded_config(cfg, source=config_file or "the overrides")
    if freeze:
        cfg.freeze()
    return cfg


def check_loaded_config(cfg: CfgNode, source: str = "the config") -> None:
    """Checks a merged config: its schema version, and the keys that are accepted but not implemented.

    Each key of :data:`fastreid.config.defaults.UNSUPPORTED_KEYS` set to a value other than its default is
    logged as a WARNING naming it.

    Args:
        cfg: the merged tree.
        source: where it came from, for messages.

    Raises:
        ConfigError: when ``cfg.VERSION`` is not the schema version of this fastreid.
    """
    from .defaults import DEFAULT_CONFIG, UNSUPPORTED_KEYS

    if cfg.VERSION != DEFAULT_CONFIG.VERSION:
        raise ConfigError(
            f"VERSION {cfg.VERSION!r} in {source}: this fastreid reads config schema version {DEFAULT_CONFIG.VERSION} "
            "(fast-reid's files have no VERSION and are translated). Remove the VERSION line, or use the fastreid "
            "release that wrote the file"
        )
    for key, value, default in non_default_values(cfg, UNSUPPORTED_KEYS):
        logger.warning("Config key %s = %r (default %r) is accepted but not supported by fastreid, so it has no "
                       "effect: %s", key, value, default, UNSUPPORTED_KEYS[key])


def non_default_values(cfg: CfgNode, keys: Iterable[str]) -> List[Tuple[str, Any, Any]]:
    """``(key, value, default)`` for each dotted key of ``keys`` whose value in ``cfg`` differs from the default
    tree's, in the order of ``keys``."""
    from .defaults import DEFAULT_CONFIG

    changed = []
    for key in keys:
        value, default = cfg, DEFAULT_CONFIG
        for part in key.split("."):
            value, default = value[part], default[part]
        if value != default:
            changed.append((key, value, default))
    return changed
