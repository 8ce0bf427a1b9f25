"""Architectures by model name (torchreid's names: ``osnet_x1_0``, ``resnet50_fc512``, ``densenet121``, ...).

Each name maps to the config options that build it with fastreid's registries: a backbone of
``BACKBONE_REGISTRY`` with its ``MODEL.BACKBONE.*`` options, and the ``MODEL.HEADS.*`` options of the head that
completes torchreid's model (an fc layer, part classifiers, ...). The module that registers a backbone also
registers the names it serves, so the torchreid API (``fastreid.torchreid.models.build_model``), the model-zoo
table and the tests see every architecture without a central list.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Tuple

__all__ = ["ZooEntry", "model_zoo", "register_zoo_model", "zoo_entry"]


@dataclass(frozen=True)
class ZooEntry:
    """One named architecture.

    Attributes:
        name: the model name (torchreid's, where torchreid has it).
        options: ``KEY, value, ...`` pairs merged into a config (``cfg.merge_from_list``) that already selects
            a ``Baseline`` with torchreid's head; they set at least MODEL.BACKBONE.NAME.
        input_size: (H, W) the architecture is designed for (HACNN: 160×64), used by tests and the zoo table.
        published: figures published by the reference systems, e.g. ``{"params_m": 2.2, "gmacs": 0.9789}``.
        published_notes: remarks on published figures, by the same keys: why a figure differs from fastreid's
            measurement (the model-zoo page shows them as footnotes).
    """

    name: str
    options: Tuple[Any, ...]
    input_size: Tuple[int, int] = (256, 128)
    published: Dict[str, float] = field(default_factory=dict)
    published_notes: Dict[str, str] = field(default_factory=dict)

    def option(self, key: str, default: Any = None) -> Any:
        """The value given for config ``key`` (e.g. "MODEL.BACKBONE.NAME"), or ``default``."""
        pairs = dict(zip(self.options[::2], self.options[1::2]))
        return pairs.get(key, default)


_ZOO: Dict[str, ZooEntry] = {}


def register_zoo_model(name: str, options: Sequence[Any], *, input_size: Tuple[int, int] = (256, 128),
                       published: Dict[str, float] = None, published_notes: Dict[str, str] = None) -> ZooEntry:
    """Registers ``name``; a second registration of the same name fails.

    Args:
        name: the model name.
        options: config pairs (see :class:`ZooEntry`); must set MODEL.BACKBONE.NAME.
        input_size: the architecture's (H, W).
        published: the reference systems' figures (``params_m``, ``gmacs``) where they publish them.
        published_notes: a remark on a published figure, under the figure's key.
    """
    options = tuple(options)
    if len(options) % 2 or "MODEL.BACKBONE.NAME" not in options[::2]:
        raise ValueError(f"zoo model '{name}': options must be KEY, value pairs including MODEL.BACKBONE.NAME")
    if name in _ZOO:
        raise KeyError(f"zoo model '{name}' is already registered")
    published, published_notes = dict(published or {}), dict(published_notes or {})
    if not set(published_notes) <= set(published):
        raise ValueError(f"zoo model '{name}': notes on {sorted(set(published_notes) - set(published))}, which are "
                         f"not published figures {sorted(published)}; note a figure given in `published`")
    entry = ZooEntry(name, options, tuple(input_size), published, published_notes)
    _ZOO[name] = entry
    return entry


def zoo_entry(name: str) -> ZooEntry:
    """The entry of ``name``.

    Raises:
        KeyError: naming the available models.
    """
    if name not in _ZOO:
        raise KeyError(f"Unknown model: '{name}'. Must be one of {sorted(_ZOO)}")
    return _ZOO[name]


def model_zoo() -> List[ZooEntry]:
    """Every registered entry, in registration order."""
    return list(_ZOO.values())
