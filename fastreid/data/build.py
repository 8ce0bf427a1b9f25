"""Train and test data loaders.

The trainer's entry points::

    loader = build_reid_train_loader(cfg)          # infinite iterator of batch dicts
    num_classes = loader.dataset.num_classes       # for MODEL.HEADS.NUM_CLASSES = 0
    test_loader, num_query = build_reid_test_loader(cfg, dataset_name="Market1501")

Batch dicts hold ``images`` (float ``B x 3 x H x W`` on the 0-255 scale), ``targets`` and ``camids`` (long
``B``) and ``img_paths`` (list of str). Datasets of tracklets (:class:`~fastreid.data.datasets.VideoDataset`)
give :class:`~fastreid.data.video.TrackletDataset` sets instead: ``images`` is ``B x S x 3 x H x W`` (S =
INPUT.SEQ_LEN frames, or every frame of the one tracklet of a batch with sample method "all"), ``img_paths``
a list of frame-path tuples and ``indices`` the tracklets' dataset indices; batch sizes count tracklets.

The train loader is a :class:`TrainDataLoader`: it remembers how many batches it has handed out, and its
``state_dict()`` / ``load_state_dict()`` save and restore that position with the sampler seed, so a resumed run
sees exactly the batches an uninterrupted one would have.

Training augmentation is a pure function of (sampler seed, rank, position of the sample in the rank's stream):
the sampler pairs each index with a seed for the transform (:class:`SeededSampler`), so batches are bitwise
the same for any number of workers and after a resume (except with INPUT.RPT, see :class:`RandomPatch`).
"""
import logging
from typing import Callable, Dict, Iterator, Mapping, Optional, Sequence, Tuple

import torch
from torch.utils.data import BatchSampler, DataLoader

from fastreid.config import CfgNode, configurable
from fastreid.utils import comm

from .common import CommDataset
from .datasets import VideoDataset, build_dataset
from .samplers import InferenceSampler, SeededSampler, build_train_sampler, sampler_name
from .transforms import build_transforms
from .validation import check_test_splits, check_train_split
from .video import TrackletDataset, collate_tracklets

logger = logging.getLogger(__name__)

__all__ = ["TrainDataLoader", "build_reid_test_loader", "build_reid_train_loader", "build_test_set", "build_train_set"]


class TrainDataLoader(DataLoader):
    """The infinite training loader: batches of a :class:`SeededSampler`, with a resumable position.

    Every iterator continues after the last batch handed out by the previous one, and :meth:`state_dict`
    records that position, so dropping an iterator (to stop the workers) or resuming from a checkpoint
    loses and repeats no batch.

    Args:
        dataset: the relabelled training set (a :class:`TrackletDataset` batches tracklets).
        sampler: the index sampler, wrapped into batches of ``mini_batch_size`` (incomplete batches dropped).
        mini_batch_size: images per batch on this rank.
        kwargs: other ``DataLoader`` arguments (``num_workers``, ``pin_memory``, ``generator``, ...).
    """

    def __init__(self, dataset: CommDataset, sampler: SeededSampler, mini_batch_size: int, **kwargs) -> None:
        if isinstance(dataset, TrackletDataset):
            kwargs.setdefault("collate_fn", collate_tracklets)
        super().__init__(dataset, batch_sampler=BatchSampler(sampler, mini_batch_size, drop_last=True), **kwargs)
        self._seeded_sampler = sampler
        self._start = sampler.state_dict()["start"]

    @property
    def seed(self) -> int:
        """The sampler seed (shared by all ranks)."""
        return self._seeded_sampler.seed

    def state_dict(self) -> Dict[str, int]:
        """``{"seed", "start"}``: the sampler seed and the number of this rank's samples handed out so far."""
        return {"seed": self.seed, "start": self._start}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Continue the stream of ``state`` (from :meth:`state_dict`); takes effect for iterators created
        afterwards."""
        self._seeded_sampler.load_state_dict({"seed": int(state["seed"]), "start": int(state["start"])})
        self._start = int(state["start"])

    def __iter__(self) -> Iterator:
        self._seeded_sampler.load_state_dict({"seed": self.seed, "start": self._start})
        for batch in super().__iter__():
            self._start += self.batch_sampler.batch_size
            yield batch


def build_train_set(
    cfg: CfgNode, names: Optional[Sequence[str]] = None, transform: Optional[Callable] = None
) -> CommDataset:
    """The relabelled training set of DATASETS.NAMES (or ``names``); several names train jointly.

    Train ids carry a dataset-name prefix before relabelling, so ids and cameras of different datasets never
    merge; ``set_ids`` records each sample's source dataset (the index in ``names``). Tracklet datasets give a
    :class:`TrackletDataset` sampling INPUT.SEQ_LEN frames by INPUT.SAMPLE_METHOD_TRAIN.

    Raises:
        ValueError: image and tracklet datasets are mixed, or INPUT.SAMPLE_METHOD_TRAIN is "all".
    """
    names = list(names if names is not None else cfg.DATASETS.NAMES)
    items, set_ids, datasets = [], [], []
    for set_id, name in enumerate(names):
        dataset = build_dataset(name, cfg, combineall=cfg.DATASETS.COMBINEALL)
        check_train_split(name, dataset)
        datasets.append(dataset)
        items += dataset.train
        set_ids += [set_id] * len(dataset.train)
    if _is_video("DATASETS.NAMES", names, datasets):
        if cfg.INPUT.SAMPLE_METHOD_TRAIN == "all":
            raise ValueError('INPUT.SAMPLE_METHOD_TRAIN "all" gives tracklets of different lengths, which cannot '
                             'be batched for training: use "random" or "evenly"')
        train_set: CommDataset = TrackletDataset(
            items, transform, relabel=True, set_ids=set_ids, skip_bad_images=cfg.DATALOADER.SKIP_BAD_IMAGES,
            seq_len=cfg.INPUT.SEQ_LEN, sample_method=cfg.INPUT.SAMPLE_METHOD_TRAIN)
        unit = "tracklets"
    else:
        train_set = CommDataset(items, transform, relabel=True, set_ids=set_ids,
                                skip_bad_images=cfg.DATALOADER.SKIP_BAD_IMAGES)
        unit = "images"
    logger.info("Training on %s: %d %s, %d identities, %d cameras", "+".join(names), len(train_set), unit,
                train_set.num_classes, train_set.num_cameras)
    return train_set


def _is_video(key: str, names: Sequence[str], datasets: Sequence) -> bool:
    """Whether the datasets hold tracklets; raises ValueError when ``key`` mixes tracklet and image sets."""
    video = [isinstance(d, VideoDataset) for d in datasets]
    if any(video) and not all(video):
        kinds = ", ".join(f"{n} ({'tracklets' if v else 'images'})" for n, v in zip(names, video))
        raise ValueError(f"{key} mixes tracklet (video) and image datasets: {kinds}. Train or test them in "
                         "separate runs")
    return bool(video) and all(video)


def _train_loader_from_config(cfg: CfgNode, *, train_set=None, transforms=None, world_size: Optional[int] = None):
    if transforms is None:
        transforms = build_transforms(cfg, is_train=True)
    if train_set is None:
        train_set = build_train_set(cfg, transform=transforms)
    world_size = world_size or comm.get_world_size()
    dl = cfg.DATALOADER
    return {
        "train_set": train_set,
        "sampler": sampler_name(dl.SAMPLER_TRAIN, dl.PK_SAMPLER, dl.NAIVE_WAY),
        "mini_batch_size": cfg.SOLVER.IMS_PER_BATCH // world_size,
        "num_instance": dl.NUM_INSTANCE,
        "set_weight": list(dl.SET_WEIGHT),
        "num_workers": dl.NUM_WORKERS,
        "pin_memory": str(cfg.MODEL.DEVICE).startswith("cuda"),
        "world_size": world_size,
    }


@configurable(from_config=_train_loader_from_config)
def build_reid_train_loader(
    train_set: CommDataset,
    *,
    sampler: str = "TrainingSampler",
    mini_batch_size: int,
    num_instance: int = 4,
    set_weight: Optional[Sequence[float]] = None,
    num_workers: int = 0,
    pin_memory: bool = False,
    seed: Optional[int] = None,
    start_iter: int = 0,
    rank: Optional[int] = None,
    world_size: Optional[int] = None,
) -> TrainDataLoader:
    """An infinite loader of training batches for this rank.

    Call as ``build_reid_train_loader(cfg)`` (optionally with ``train_set=``, ``transforms=``, ``seed=``,
    ``start_iter=`` overrides) or with explicit arguments.

    Args:
        train_set: relabelled training set (``relabel=True``).
        sampler: name in SAMPLER_REGISTRY.
        mini_batch_size: images (tracklets) per batch on this rank (SOLVER.IMS_PER_BATCH // world size).
        num_instance: K of the identity samplers.
        set_weight: per-dataset weights of SetReWeightSampler.
        num_workers: worker processes (0 = load in the main process). The sampler is infinite, so one
            iterator, and one set of workers, serves every epoch.
        pin_memory: pin batches for asynchronous copies to CUDA.
        seed: sampler seed; None = a seed shared by all ranks (``loader.seed`` reads it back).
        start_iter: iterations already done; the loader resumes the sampler stream exactly there.
        rank, world_size: shard; default from ``fastreid.utils.comm``.

    Returns:
        A :class:`TrainDataLoader` yielding dicts: ``images`` float ``B x 3 x H x W`` (0-255; ``B x S x 3 x H x
        W`` for a :class:`TrackletDataset`, see the module docstring), ``targets`` long ``B``, ``camids`` long
        ``B``, ``img_paths`` list[str] (of frame-path tuples for tracklets). ``loader.dataset.num_classes`` is
        the number of training identities; ``loader.state_dict()`` is its position for a resume.
    """
    index_sampler = SeededSampler(build_train_sampler(
        sampler, train_set, mini_batch_size=mini_batch_size, num_instance=num_instance, set_weight=set_weight,
        seed=seed, rank=rank, world_size=world_size, start=start_iter * mini_batch_size,
    ))
    # The loader's own generator (seeded like the sampler) draws the worker base seeds, so starting an iterator
    # does not advance the global torch RNG, which a resumed run restores from its checkpoint.
    generator = torch.Generator().manual_seed(index_sampler.seed + index_sampler.rank)
    return TrainDataLoader(
        train_set, index_sampler, mini_batch_size, num_workers=num_workers, pin_memory=pin_memory,
        generator=generator,
    )


def build_test_set(cfg: CfgNode, dataset_name: str, transform: Optional[Callable] = None) -> Tuple[CommDataset, int]:
    """Query followed by gallery of ``dataset_name`` with raw ids, and the number of queries.

    A tracklet dataset gives a :class:`TrackletDataset` sampling by INPUT.SAMPLE_METHOD_TEST (INPUT.SEQ_LEN
    frames for "evenly", every frame for "all").

    Raises:
        DatasetCheckError: an empty query or gallery, or no query with a valid match (see
            :func:`fastreid.data.validation.check_test_splits`), before any image is read.
    """
    dataset = build_dataset(dataset_name, cfg)
    check_test_splits(dataset_name, dataset)  # the evaluator warns about the queries it skips
    records = dataset.query + dataset.gallery
    if _is_video("DATASETS.TESTS", [dataset_name], [dataset]):
        test_set: CommDataset = TrackletDataset(
            records, transform, relabel=False, skip_bad_images=cfg.DATALOADER.SKIP_BAD_IMAGES,
            seq_len=cfg.INPUT.SEQ_LEN, sample_method=cfg.INPUT.SAMPLE_METHOD_TEST)
    else:
        test_set = CommDataset(records, transform, relabel=False, skip_bad_images=cfg.DATALOADER.SKIP_BAD_IMAGES)
    return test_set, len(dataset.query)


def _test_loader_from_config(cfg: CfgNode, *, dataset_name: Optional[str] = None, test_set=None, num_query=None,
                             transforms=None):
    if test_set is None:
        if dataset_name is None:
            raise ValueError("build_reid_test_loader(cfg) needs dataset_name= (one of DATASETS.TESTS)")
        test_set, num_query = build_test_set(cfg, dataset_name, transforms or build_transforms(cfg, is_train=False))
    return {"test_set": test_set, "num_query": num_query, "batch_size": cfg.TEST.IMS_PER_BATCH,
            "num_workers": cfg.DATALOADER.NUM_WORKERS}


@configurable(from_config=_test_loader_from_config)
def build_reid_test_loader(
    test_set: CommDataset,
    num_query: int,
    *,
    batch_size: int = 64,
    num_workers: int = 0,
    rank: Optional[int] = None,
    world_size: Optional[int] = None,
) -> Tuple[DataLoader, int]:
    """A loader over query then gallery, in order, sharded by rank without drops or duplicates.

    Call as ``build_reid_test_loader(cfg, dataset_name="Market1501")`` or with explicit arguments. A
    :class:`TrackletDataset` sampling "all" frames is batched one tracklet at a time, whatever ``batch_size``.

    Returns:
        ``(loader, num_query)``: batches as in :func:`build_reid_train_loader` (raw ``targets``/``camids``);
        the first ``num_query`` samples of the whole set are queries.
    """
    collate_fn = None
    if isinstance(test_set, TrackletDataset):
        collate_fn = collate_tracklets
        if test_set.sample_method == "all" and batch_size != 1:
            logger.info("Sample method 'all': one tracklet per test batch (batch size %d ignored)", batch_size)
            batch_size = 1
    sampler = InferenceSampler(len(test_set), rank=rank, world_size=world_size)
    loader = DataLoader(test_set, batch_sampler=BatchSampler(sampler, batch_size, drop_last=False),
                        num_workers=num_workers, collate_fn=collate_fn)
    return loader, num_query
