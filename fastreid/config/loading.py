"""The one way to build a run's config: defaults, then a config file, then ``KEY VALUE`` overrides."""
from typing import Any, Optional, Sequence

from .config import CfgNode, get_cfg

__all__ = ["load_config"]


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
        ConfigError: on a missing or invalid file, an unknown key, a badly typed value or an odd ``opts``.
    """
    cfg = get_cfg() if base is None else base
    if config_file:
        cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    if freeze:
        cfg.freeze()
    return cfg
