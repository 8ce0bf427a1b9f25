"""Checks of the configured training and test sets, made when a trainer is built, before any training step.

Without them a test set with an empty query or gallery, or without a single valid query, fails only at the first
evaluation, after TEST.EVAL_PERIOD epochs of training. :func:`check_datasets` lists the records of every
dataset of DATASETS.NAMES and DATASETS.TESTS (no image is read) and reports every problem at once, naming the
config key, the dataset, the split and the folder or list file it was read from.
"""
import logging
from typing import Dict, List, Optional, Sequence

from fastreid.config import CfgNode
from fastreid.utils import comm

from .datasets import DATASET_REGISTRY, Dataset, build_dataset
from .datasets.bases import README_HINT, queries_without_match
from .samplers import SAMPLER_REGISTRY, IdentitySampler, identity_count_problem, pk_batch_problem, sampler_name

logger = logging.getLogger(__name__)

__all__ = ["DatasetCheckError", "check_datasets", "check_test_splits", "check_train_split"]

_MAX_LISTED_IDS = 10


class DatasetCheckError(ValueError):
    """A training or test set that cannot be used as configured."""


def _source(dataset: Dataset, split: str) -> str:
    source = dataset.split_source(split)
    return f"'{source}'" if source else f"an unknown folder; {README_HINT}"


def _id_list(ids: Sequence) -> str:
    ids = sorted(set(ids))
    shown = ", ".join(str(i) for i in ids[:_MAX_LISTED_IDS])
    return shown + (f", ... ({len(ids)} ids)" if len(ids) > _MAX_LISTED_IDS else "")


def check_train_split(name: str, dataset: Dataset) -> None:
    """Raise :class:`DatasetCheckError` when the dataset ``name`` has no training record.

    Args:
        name: the dataset's name as written in DATASETS.NAMES.
        dataset: the built dataset.
    """
    if not dataset.train:
        raise DatasetCheckError(
            f"DATASETS.NAMES: '{name}' has an empty train split (read from {_source(dataset, 'train')}): add "
            f"training images there, or list '{name}' only in DATASETS.TESTS if it is a test-only dataset"
        )


def check_test_splits(name: str, dataset: Dataset) -> Optional[str]:
    """Check that the dataset ``name`` can be evaluated: query and gallery are not empty and at least one query
    has a gallery image of its identity from another camera (the evaluation protocol's valid match).

    Args:
        name: the dataset's name as written in DATASETS.TESTS.
        dataset: the built dataset.

    Returns:
        None, or a warning naming the queries that the evaluation will skip (no valid match).

    Raises:
        DatasetCheckError: an empty query or gallery split, or no query with a valid match.
    """
    for split, records in (("query", dataset.query), ("gallery", dataset.gallery)):
        if not records:
            raise DatasetCheckError(
                f"DATASETS.TESTS: '{name}' has an empty {split} split (read from {_source(dataset, split)}): add "
                f"{split} images there, or list '{name}' only in DATASETS.NAMES if it is a training-only dataset"
            )
    unmatched = queries_without_match(dataset.query, dataset.gallery)
    where = f"query: {_source(dataset, 'query')}, gallery: {_source(dataset, 'gallery')}"
    if len(unmatched) == len(dataset.query):
        raise DatasetCheckError(
            f"DATASETS.TESTS: '{name}': no query has a gallery image of the same identity from another camera "
            f"({where}), so nothing can be evaluated; query ids without a match: "
            f"{_id_list([r[1] for r in unmatched])}. Check the identities and cameras of the query and gallery "
            "images (the evaluation ignores gallery images of the query's identity taken by the query's camera)"
        )
    if unmatched:
        return (f"DATASETS.TESTS: '{name}': {len(unmatched)} of {len(dataset.query)} queries have no gallery image "
                f"of the same identity from another camera ({where}) and will be skipped by the evaluation; their "
                f"ids: {_id_list([r[1] for r in unmatched])}")
    return None


def _unknown_names(cfg: CfgNode) -> List[str]:
    keys = [("DATASETS.NAMES", cfg.DATASETS.NAMES), ("DATASETS.TESTS", cfg.DATASETS.TESTS)]
    if cfg.TEST.PRECISE_BN.ENABLED or cfg.SOLVER.SWA.ENABLED:
        keys.append(("TEST.PRECISE_BN.DATASET", [cfg.TEST.PRECISE_BN.DATASET]))
    problems = []
    for key, names in keys:
        for name in names:
            if name not in DATASET_REGISTRY:
                try:
                    DATASET_REGISTRY.get(name)
                except KeyError as e:
                    problems.append(f"{key}: {e.args[0]}")
    return problems


def _batch_problems(cfg: CfgNode, num_train_ids: Optional[int], world_size: int) -> List[str]:
    """Problems of SOLVER.IMS_PER_BATCH with the training sampler (and, unless ``num_train_ids`` is None, with
    the number of training identities); a warning is logged when images are dropped."""
    ims, k = cfg.SOLVER.IMS_PER_BATCH, cfg.DATALOADER.NUM_INSTANCE
    if ims < world_size:
        return [f"SOLVER.IMS_PER_BATCH = {ims} gives no image to some of the {world_size} processes: set it to a "
                f"positive multiple of {world_size}"]
    dl = cfg.DATALOADER
    try:
        sampler = SAMPLER_REGISTRY.get(sampler_name(dl.SAMPLER_TRAIN, dl.PK_SAMPLER, dl.NAIVE_WAY))
    except KeyError as e:
        return [f"DATALOADER.SAMPLER_TRAIN: {e.args[0]}"]
    if ims % world_size:
        logger.warning("SOLVER.IMS_PER_BATCH = %d is not a multiple of the %d processes: each takes %d images, "
                       "so a step trains on %d", ims, world_size, ims // world_size, ims // world_size * world_size)
    if not (isinstance(sampler, type) and issubclass(sampler, IdentitySampler)):
        return []
    problem = pk_batch_problem(ims, k, world_size)
    if problem is None and num_train_ids is not None:
        problem = identity_count_problem(num_train_ids, ims, k, world_size)
        if problem is not None:
            problem = f"DATASETS.NAMES ({' + '.join(cfg.DATASETS.NAMES)}): {problem}"
    return [problem] if problem else []


def check_datasets(cfg: CfgNode, *, train_set=None, world_size: Optional[int] = None) -> None:
    """Fail before training when a dataset of the config cannot be trained on or evaluated.

    Checks: every name of DATASETS.NAMES, DATASETS.TESTS (and TEST.PRECISE_BN.DATASET when precise BN or SWA
    is on) is registered; every training set has a non-empty train split; every test set has a non-empty query
    and gallery and at least one query with a valid match (a warning names the queries without one, which the
    evaluation skips); SOLVER.IMS_PER_BATCH splits into DATALOADER.NUM_INSTANCE images per identity and the
    training identities fill one batch (identity samplers). Only file lists are read, not images.

    Args:
        cfg: the run's config.
        train_set: the training set the trainer already built (anything with ``num_classes``, such as
            ``trainer.data_loader.dataset``); when given, the training datasets are not listed again.
        world_size: training processes; default from :mod:`fastreid.utils.comm`.

    Raises:
        DatasetCheckError: listing every problem found, each naming the key, dataset, split and folder.
    """
    world_size = world_size or comm.get_world_size()
    problems = _unknown_names(cfg)
    if train_set is None and not cfg.DATASETS.NAMES:
        problems.append("DATASETS.NAMES is empty: name at least one training set, e.g. ('Market1501',)")
    if problems:
        raise DatasetCheckError(_summary(problems))

    built: Dict[str, Dataset] = {}
    num_train_ids: Optional[int] = None if train_set is None else int(train_set.num_classes)
    if train_set is None:
        for name in cfg.DATASETS.NAMES:
            built[name] = build_dataset(name, cfg, combineall=cfg.DATASETS.COMBINEALL, verbose=False)
            try:
                check_train_split(name, built[name])
            except DatasetCheckError as e:
                problems.append(str(e))
        if not problems:  # an empty train split is reported once, not again as too few identities
            num_train_ids = len({r[1] for name in cfg.DATASETS.NAMES for r in built[name].train})
    for name in cfg.DATASETS.TESTS:
        if name not in built:  # COMBINEALL adds to train only: query and gallery are the same
            built[name] = build_dataset(name, cfg, verbose=False)
        try:
            warning = check_test_splits(name, built[name])
        except DatasetCheckError as e:
            problems.append(str(e))
        else:
            if warning:
                logger.warning(warning)
    problems += _batch_problems(cfg, num_train_ids, world_size)
    if problems:
        raise DatasetCheckError(_summary(problems))
    logger.info("Datasets checked: train %s (%s identities), test %s", "+".join(cfg.DATASETS.NAMES),
                num_train_ids, ", ".join(cfg.DATASETS.TESTS) or "(none)")


def _summary(problems: List[str]) -> str:
    if len(problems) == 1:
        return problems[0]
    return "The datasets cannot be used as configured:\n" + "\n".join(f"- {p}" for p in problems)
