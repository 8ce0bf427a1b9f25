"""Config tree, YAML loading with ``_BASE_`` inheritance, the ``configurable`` idiom, and the one config
loader and command-line arguments every entry point uses."""
from .arguments import add_config_arguments, config_overrides
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
from .loading import load_config, non_default_values

__all__ = [
    "CfgNode",
    "ConfigError",
    "add_config_arguments",
    "coerce_value",
    "config_overrides",
    "configurable",
    "get_cfg",
    "load_config",
    "load_yaml_chain",
    "load_yaml_with_base",
    "non_default_values",
    "translate_config_dict",
]
