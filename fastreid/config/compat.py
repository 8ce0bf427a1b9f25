"""Translation of fast-reid's later config schema onto fastreid's tree.

fast-reid's config files come in two generations. The first (the config reference) is fastreid's own tree.
The second, used by fast-reid's published recipes, nests or renames some keys (``SOLVER.AMP.ENABLED`` for
``SOLVER.FP16_ENABLED``, ``INPUT.FLIP.ENABLED`` for ``INPUT.DO_FLIP``, ``DATALOADER.SAMPLER_TRAIN`` for
``DATALOADER.PK_SAMPLER`` / ``NAIVE_WAY``, ...). Each file is translated before it is merged, so both
generations load unchanged and map onto one tree. Keys that the later schema only adds (``INPUT.CROP``,
``SOLVER.CLIP_GRADIENTS``, ViT keys, ...) are part of the tree itself and need no translation.
"""
import copy
from typing import Any, Dict, List, Tuple

# later-schema key -> fastreid key
RENAMED_KEYS: Dict[str, str] = {
    "SOLVER.AMP.ENABLED": "SOLVER.FP16_ENABLED",
    "INPUT.FLIP.ENABLED": "INPUT.DO_FLIP",
    "INPUT.FLIP.PROB": "INPUT.FLIP_PROB",
    "INPUT.PADDING.ENABLED": "INPUT.DO_PAD",
    "INPUT.PADDING.SIZE": "INPUT.PADDING",
    "INPUT.PADDING.MODE": "INPUT.PADDING_MODE",
    "INPUT.AUTOAUG.ENABLED": "INPUT.DO_AUTOAUG",
    "INPUT.AUTOAUG.PROB": "INPUT.AUTOAUG_PROB",
    "INPUT.AUGMIX.ENABLED": "INPUT.DO_AUGMIX",
    "INPUT.AUGMIX.PROB": "INPUT.AUGMIX_PROB",
    "INPUT.AFFINE.ENABLED": "INPUT.DO_AFFINE",
    "TEST.FLIP.ENABLED": "TEST.FLIP_ENABLED",
    "TEST.ROC.ENABLED": "TEST.ROC_ENABLED",
}

# DATALOADER.SAMPLER_TRAIN values that the first schema expresses with PK_SAMPLER / NAIVE_WAY.
SAMPLER_FLAGS: Dict[str, Dict[str, bool]] = {
    "TrainingSampler": {"PK_SAMPLER": False},
    "NaiveIdentitySampler": {"PK_SAMPLER": True, "NAIVE_WAY": True},
    "BalancedIdentitySampler": {"PK_SAMPLER": True, "NAIVE_WAY": False},
}

# Keys that fast-reid's later schema makes lists (one entry per teacher) while the config reference, and so this
# tree, keeps them strings: a list is stored as its Python literal, which the reader (Distiller) parses back, so
# that the command-line form '("t1.yml", "t2.yml")' and a YAML list give the same value.
LIST_AS_STRING_KEYS = ("KD.MODEL_CONFIG", "KD.MODEL_WEIGHTS")

_MISSING = object()


def _pop_path(tree: Dict[str, Any], parts: List[str]) -> Any:
    node = tree
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return _MISSING
    return node.pop(parts[-1], _MISSING)


def _set_path(tree: Dict[str, Any], parts: List[str], value: Any) -> None:
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _drop_empty_groups(tree: Dict[str, Any], parts: List[str]) -> None:
    """Remove the now-empty dicts along ``parts`` (deepest first)."""
    for depth in range(len(parts) - 1, 0, -1):
        node = tree
        for part in parts[: depth - 1]:
            node = node.get(part, {})
        group = node.get(parts[depth - 1])
        if isinstance(group, dict) and not group:
            del node[parts[depth - 1]]


def translate_config_dict(loaded: Dict[str, Any]) -> Tuple[Dict[str, Any], List[str]]:
    """Translate a config mapping from fast-reid's later schema onto fastreid's tree.

    Args:
        loaded: nested mapping as read from a YAML file or built from overrides. It is not modified.

    Returns:
        The translated mapping and a list of human-readable notes, one per translated key (empty when the
        mapping already uses fastreid's schema).
    """
    result = copy.deepcopy(loaded)
    notes: List[str] = []
    moved: Dict[str, Any] = {}
    for old_key, new_key in RENAMED_KEYS.items():
        value = _pop_path(result, old_key.split("."))
        if value is not _MISSING:
            moved[new_key] = value
            notes.append(f"{old_key} -> {new_key}")
            _drop_empty_groups(result, old_key.split("."))
    for new_key, value in moved.items():
        _set_path(result, new_key.split("."), value)

    for key in LIST_AS_STRING_KEYS:
        parts = key.split(".")
        value = _pop_path(result, parts)
        if isinstance(value, (list, tuple)):
            value = repr([str(v) for v in value])
            notes.append(f"{key} list -> {value}")
        if value is not _MISSING:
            _set_path(result, parts, value)

    loader = result.get("DATALOADER")
    if isinstance(loader, dict) and loader.get("SAMPLER_TRAIN") in SAMPLER_FLAGS:
        name = loader.pop("SAMPLER_TRAIN")
        flags = SAMPLER_FLAGS[name]
        loader.update(flags)
        settings = ", ".join(f"{k}={v}" for k, v in flags.items())
        notes.append(f"DATALOADER.SAMPLER_TRAIN {name} -> DATALOADER.{settings}")
    return result, notes
