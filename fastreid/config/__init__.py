"""Config tree, YAML loading with ``_BASE_`` inheritance, and the ``configurable`` idiom."""
from .config import (
    CfgNode,
    ConfigError,
    coerce_value,
    configurable,
    get_cfg,
    load_yaml_chain,
    load_yaml_with_base,
)
from .compat import translate_config_dict

__all__ = [
    "CfgNode",
    "ConfigError",
    "coerce_value",
    "configurable",
    "get_cfg",
    "load_yaml_chain",
    "load_yaml_with_base",
    "translate_config_dict",
]
