"""Name-to-object registries, the extension points of fastreid.

Built on fvcore's ``Registry``: registering a name twice fails. fastreid adds aliases (fast-reid's config
files spell some component names two ways, e.g. ``avgpool`` and ``GlobalAvgPool``) and an error for an unknown
name that lists what is registered and the closest match.
"""
import difflib
from typing import Any, Dict, Iterable

from fvcore.common.registry import Registry as _FvcoreRegistry

__all__ = ["Registry"]


class Registry(_FvcoreRegistry):
    """A registry of named objects (classes or builder functions) with optional aliases.

    Example::

        BACKBONE_REGISTRY = Registry("BACKBONE")

        @BACKBONE_REGISTRY.register()
        def build_toy_backbone(cfg): ...

        BACKBONE_REGISTRY.get("build_toy_backbone")
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._aliases: Dict[str, str] = {}

    def _do_register(self, name: str, obj: Any) -> None:
        if name in self._obj_map or name in self._aliases:
            raise KeyError(f"An object named '{name}' is already registered in the {self._name} registry")
        self._obj_map[name] = obj

    def register_alias(self, alias: str, target: str) -> None:
        """Make ``alias`` resolve to the registered name ``target``."""
        if alias in self._obj_map or alias in self._aliases:
            raise KeyError(f"'{alias}' is already registered in the {self._name} registry")
        self._aliases[alias] = target

    def canonical_name(self, name: str) -> str:
        """The registered name that ``name`` (a registered name or an alias) refers to."""
        return self._aliases.get(name, name)

    def names(self) -> Iterable[str]:
        """Registered names and aliases, sorted."""
        return sorted(list(self._obj_map) + list(self._aliases))

    def __contains__(self, name: str) -> bool:
        return self.canonical_name(name) in self._obj_map

    def get(self, name: str) -> Any:
        """Return the object registered as ``name`` (or as the name ``name`` is an alias of).

        Raises:
            KeyError: naming the registry, the registered names and the closest match.
        """
        obj = self._obj_map.get(self.canonical_name(name))
        if obj is None:
            known = list(self.names())
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise KeyError(
                f"No object named '{name}' in the {self._name} registry.{hint} Registered: "
                f"{', '.join(known) if known else '(none)'}. A project registers its own with "
                f"@{self._name}_REGISTRY.register() in a module it imports before building."
            )
        return obj
