"""How a checkpoint's tensors fit a model: which keys did not load, once each, and whether the load is partial.

:class:`~fastreid.utils.checkpoint.Checkpointer` uses these to leave an unfit classifier out of inference loads,
to report each incompatible key exactly once, and to refuse weights that leave part of the model outside the
identity classifier at its initialisation (another architecture's checkpoint).
"""
import fnmatch
from collections import defaultdict
from typing import Any, Dict, Iterable, List, NamedTuple, Sequence, Set, Tuple

from tabulate import tabulate
from torch import nn

__all__ = [
    "CLASSIFIER_PREFIXES",
    "Fit",
    "IncompatibleKeys",
    "drop_unfit",
    "fit_table",
    "in_modules",
    "incompatible_keys_once",
    "judge_fit",
    "unfit_examples",
    "weight_keys",
]


def _pipe_table(rows: List[Tuple[Any, ...]], headers: Tuple[str, ...]) -> str:
    return tabulate(rows, headers=headers, tablefmt="pipe")


CLASSIFIER_PREFIXES: Tuple[str, ...] = ("classifier", "*.classifier")
"""Module paths taken for identity classifiers when judging a load: their tensors may be of another shape
or absent (fine-tuning on other identities) without making the load partial."""


class IncompatibleKeys(NamedTuple):
    """What a load left untouched, each key in exactly one field.

    Attributes:
        missing_keys: model keys the checkpoint lacks (sorted); aliases of a loaded tensor are left out.
        unexpected_keys: checkpoint keys the model lacks (sorted).
        incorrect_shapes: ``(key, shape in checkpoint, shape in model)`` of the tensors skipped for their shape.
    """

    missing_keys: List[str]
    unexpected_keys: List[str]
    incorrect_shapes: List[Tuple[str, Tuple[int, ...], Tuple[int, ...]]]


def in_modules(key: str, prefixes: Sequence[str]) -> bool:
    """Whether ``key`` lies in a module whose path matches one of ``prefixes`` (fnmatch wildcards)."""
    parts = key.split(".")
    paths = [".".join(parts[:end]) for end in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatchcase(path, prefix) for path in paths for prefix in prefixes)


def drop_unfit(model: nn.Module, state: Dict[str, Any], prefixes: Sequence[str]) -> List[str]:
    """Removes from ``state`` the tensors under ``prefixes`` the model cannot take; returns their keys.

    A tensor fits when the model holds one of the same name and shape; those stay and are loaded.
    """
    own = model.state_dict()
    # As fvcore does after this, read keys without the "module." of a DataParallel-wrapped save.
    wrapped = bool(state) and all(key.startswith("module.") for key in state)
    dropped = []
    for key in list(state):
        name = key[len("module."):] if wrapped else key
        if not in_modules(name, prefixes):
            continue
        target = own.get(name)
        lazy = isinstance(target, nn.parameter.UninitializedParameter)
        if target is None or (not lazy and tuple(target.shape) != tuple(state[key].shape)):
            del state[key]
            dropped.append(name)
    return dropped


def _loaded_under_alias(model: nn.Module, missing: Iterable[str]) -> Set[str]:
    """The ``missing`` keys whose tensor was loaded under another name (a module or tensor shared by two paths)."""
    missing = set(missing)
    names_by_tensor: Dict[int, Set[str]] = defaultdict(set)
    # Unlike named_parameters(), state_dict() lists a shared tensor under every path that reaches it.
    for name, tensor in model.state_dict(keep_vars=True).items():
        names_by_tensor[id(tensor)].add(name)
    covered: Set[str] = set()
    for names in names_by_tensor.values():
        if not names <= missing:
            covered |= names & missing
    return covered


def incompatible_keys_once(model: nn.Module, raw: Any) -> IncompatibleKeys:
    """fvcore's report (``missing_keys``, ``unexpected_keys``, ``incorrect_shapes``) with each key once.

    fvcore removes shape-mismatched tensors from the checkpoint before ``load_state_dict``, which then
    lists them as missing too; here they stay only shape mismatches.
    """
    shapes = [(key, tuple(in_file), tuple(in_model)) for key, in_file, in_model in raw.incorrect_shapes]
    skipped = {key for key, _, _ in shapes} | _loaded_under_alias(model, raw.missing_keys)
    missing = sorted(key for key in set(raw.missing_keys) if key not in skipped)
    return IncompatibleKeys(missing, sorted(raw.unexpected_keys), shapes)


def _group(key: str) -> str:
    """The module a key is reported under: two levels deep, block numbers dropped (``backbone.layer3``)."""
    parts = key.split(".")[:-1] or key.split(".")
    parts = parts[:2]
    while len(parts) > 1 and parts[-1].isdigit():
        parts.pop()
    return ".".join(parts)


# BatchNorm fills in its step counter when a file lacks it, so it always "loads": not counted either way.
_STEP_COUNTER = "num_batches_tracked"


def weight_keys(model: nn.Module) -> List[str]:
    """The model's state-dict keys that a load must fill (BatchNorm step counters left out)."""
    return [key for key in model.state_dict() if not key.endswith(_STEP_COUNTER)]


def fit_table(model_keys: Sequence[str], report: IncompatibleKeys) -> str:
    """Per module: tensors loaded, missing from the file, of another shape, and only in the file."""
    missing, shapes = set(report.missing_keys), {key for key, _, _ in report.incorrect_shapes}
    counts: Dict[str, List[int]] = {}
    for key in model_keys:
        column = 1 if key in missing else 2 if key in shapes else 0
        counts.setdefault(_group(key), [0, 0, 0, 0])[column] += 1
    for key in report.unexpected_keys:
        counts.setdefault(_group(key), [0, 0, 0, 0])[3] += 1
    rows = [(group, *numbers) for group, numbers in counts.items()]
    return _pipe_table(rows, ("module", "loaded", "missing in file", "other shape", "only in file"))


def unfit_examples(report: IncompatibleKeys, limit: int = 8) -> str:
    rows = [(key, str(tuple(in_file)), str(tuple(in_model))) for key, in_file, in_model in report.incorrect_shapes]
    rows += [(key, "-", "missing in file") for key in report.missing_keys]
    rows += [(key, "only in file", "-") for key in report.unexpected_keys]
    more = f"\n... and {len(rows) - limit} more" if len(rows) > limit else ""
    return _pipe_table(rows[:limit], ("key", "in checkpoint", "in model")) + more


class Fit(NamedTuple):
    """How a load went outside the classifier: tensors of the model, loaded, and the keys that make it partial."""

    total: int
    loaded: int
    missing: List[str]
    shapes: List[str]
    unused: List[str]


def judge_fit(model: nn.Module, report: IncompatibleKeys, skip_prefixes: Sequence[str]) -> Fit:
    """How the load that gave ``report`` went outside the identity classifiers and ``skip_prefixes``.

    Args:
        model: the model loaded into.
        report: the load's incompatible keys (from :func:`incompatible_keys_once`).
        skip_prefixes: further module paths whose misfit does not make the load partial.
    """
    ignore = tuple(CLASSIFIER_PREFIXES) + tuple(skip_prefixes)
    own = [key for key in weight_keys(model) if not in_modules(key, ignore)]
    shapes = [key for key, _, _ in report.incorrect_shapes if not in_modules(key, ignore)]
    not_loaded = set(report.missing_keys) | set(shapes)
    missing = [k for k in report.missing_keys if not in_modules(k, ignore) and not k.endswith(_STEP_COUNTER)]
    # Tensors the file holds for the model's own modules (e.g. a deeper backbone's extra blocks) are a misfit;
    # those of modules the model lacks altogether (an ImageNet "fc", a teacher) are only reported.
    tops = {key.split(".")[0] for key in model.state_dict()}
    unused = [k for k in report.unexpected_keys if k.split(".")[0] in tops and not in_modules(k, ignore)]
    return Fit(len(own), sum(key not in not_loaded for key in own), missing, shapes, unused)
