"""torchreid's video data API: ``VideoDataManager``, the ``VideoDataset`` base class, ``register_video_dataset``.

The manager is :class:`~fastreid.torchreid.data.ImageDataManager` on tracklet datasets: fastreid's
:func:`~fastreid.data.build.build_train_set` / ``build_test_set`` give
:class:`~fastreid.data.video.TrackletDataset` sets for them, so sampling, augmentation seeding, identity
samplers (over tracklets) and the resumable train loader are fastreid's own. Arguments beyond the image
manager's:

- ``seq_len`` -> INPUT.SEQ_LEN; ``sample_method`` -> INPUT.SAMPLE_METHOD_TRAIN and SAMPLE_METHOD_TEST, as
  torchreid samples train, query and gallery alike. ``"all"`` (every frame, one tracklet per test batch) is a
  test-time method: training then samples ``"evenly"`` (override with ``sample_method_train``).
- ``batch_size_train`` / ``batch_size_test`` count tracklets (SOLVER.IMS_PER_BATCH / TEST.IMS_PER_BATCH); a
  batch holds ``batch_size * seq_len`` frames.
- ``frame_chunk`` -> TEST.FRAME_CHUNK: the video engines run at most that many frames through the model at once.

torchreid's video keys (``mars``, ``ilidsvid``, ``prid2011``, ``dukemtmcvidreid``) are aliases of fastreid's
registered datasets, so a fastreid config may name either.
"""
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Type, Union

from fastreid.data import TrackletDataset, build_reid_test_loader
from fastreid.data.datasets import DATASET_REGISTRY, Dataset
from fastreid.data.datasets import VideoDataset as FastreidVideoDataset
from fastreid.data.video import SAMPLE_METHODS

from .datamanager import ImageDataManager
from .datasets import DatasetKeys, ImageDataset
from .loaders import TorchreidTestLoader, TorchreidTrainLoader, to_torchreid_batch

__all__ = ["TORCHREID_VIDEO_DATASETS", "VideoDataManager", "VideoDataset", "TorchreidVideoTestLoader",
           "TorchreidVideoTrainLoader", "register_video_dataset", "resolve_video_dataset", "to_torchreid_video_batch",
           "video_dataset_keys"]

#: torchreid's video dataset keys -> fastreid's registered dataset names.
TORCHREID_VIDEO_DATASETS: Dict[str, str] = {
    "mars": "MARS",
    "ilidsvid": "iLIDSVID",
    "prid2011": "PRID2011",
    "dukemtmcvidreid": "DukeMTMCVidReID",
}

Names = Union[str, Sequence[str], None]

for _key, _name in TORCHREID_VIDEO_DATASETS.items():
    if _key not in DATASET_REGISTRY:
        DATASET_REGISTRY.register_alias(_key, _name)


class VideoDataset(FastreidVideoDataset):
    """torchreid's base class of video datasets, on fastreid's :class:`fastreid.data.datasets.VideoDataset`.

    A subclass builds ``train``, ``query`` and ``gallery`` lists of ``(frame_paths, pid, camid)`` records
    (``frame_paths`` a tuple in temporal order; 0-based ids, query and gallery sharing the id scope) and calls
    ``super().__init__(train, query, gallery, **kwargs)``.

    Args:
        train, query, gallery: tracklet records.
        combineall: also train on query and gallery (minus :attr:`_junk_pids`).
        verbose: log the subset statistics.
        kwargs: torchreid's other arguments (``seq_len``, ``sample_method``, ``transform``, ``mode``, ``root``):
            accepted and unused, since the data manager's fastreid loaders sample frames and transform them.
    """

    def __init__(self, train: List[Any], query: List[Any], gallery: List[Any], combineall: bool = False,
                 verbose: bool = True, **kwargs: Any) -> None:
        super().__init__(list(train), list(query), list(gallery), combineall=combineall, verbose=verbose)

    # The image base class's properties read only ``self.train``.
    num_train_pids = ImageDataset.num_train_pids
    num_train_cams = ImageDataset.num_train_cams


VIDEO_DATASET_KEYS = DatasetKeys("video", FastreidVideoDataset, TORCHREID_VIDEO_DATASETS)


def video_dataset_keys() -> List[str]:
    """The dataset keys :func:`resolve_video_dataset` accepts: torchreid's and those registered, sorted."""
    return VIDEO_DATASET_KEYS.keys()


def resolve_video_dataset(key: str) -> str:
    """fastreid's registered dataset name for a torchreid video dataset key (see :meth:`DatasetKeys.resolve`).

    Raises:
        KeyError: the key names no dataset, listing the known keys.
        TypeError: the dataset it names holds images, not tracklets.
    """
    return VIDEO_DATASET_KEYS.resolve(key)


def register_video_dataset(name: str, dataset: Type[Dataset]) -> None:
    """Register the tracklet dataset ``dataset`` under the torchreid key ``name`` (see
    :meth:`DatasetKeys.register`).

    Args:
        name: the key used in ``sources`` / ``targets``.
        dataset: a subclass of :class:`VideoDataset` (or of any fastreid video dataset) whose constructor takes
            ``root`` and keyword arguments.
    """
    VIDEO_DATASET_KEYS.register(name, dataset)


def to_torchreid_video_batch(batch: Mapping[str, Any], mean: Sequence[float], std: Sequence[float],
                             dsetid_of: Optional[Mapping[Any, int]] = None) -> Dict[str, Any]:
    """A fastreid tracklet batch as torchreid's video batch dict.

    Args:
        batch: ``images`` float ``B x S x 3 x H x W`` (0-255), ``targets`` / ``camids`` long ``B``,
            ``img_paths`` a list of B frame-path tuples.
        mean, std: torchreid's ``norm_mean`` / ``norm_std``.
        dsetid_of: frame-path tuple -> index of its source dataset; None = all 0.

    Returns:
        ``img`` normalised ``B x S x 3 x H x W``, ``pid``, ``camid``, ``dsetid`` long ``B``, ``impath`` the
        list of frame-path tuples.
    """
    images = batch["images"]
    if images.dim() != 5:
        raise ValueError(f"A tracklet batch holds B x S x 3 x H x W frames, got {tuple(images.shape)}")
    out = to_torchreid_batch(dict(batch, images=images.flatten(0, 1)), mean, std, dsetid_of)
    out["img"] = out["img"].view(images.shape)
    return out


class TorchreidVideoTrainLoader(TorchreidTrainLoader):
    """:class:`TorchreidTrainLoader` over tracklets: batches from :func:`to_torchreid_video_batch`."""

    def __init__(self, loader, batches_per_epoch: int, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__(loader, batches_per_epoch, mean, std)
        self.dsetid_of = {tuple(r[0]): s for r, s in zip(self.dataset.img_items, self.dataset.set_ids)}

    def convert(self, batch: Mapping[str, Any]) -> Dict[str, Any]:
        """One batch of :attr:`loader` as torchreid's video dict."""
        return to_torchreid_video_batch(batch, self.mean, self.std, self.dsetid_of)


class TorchreidVideoTestLoader(TorchreidTestLoader):
    """:class:`TorchreidTestLoader` over tracklets: batches from :func:`to_torchreid_video_batch`."""

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        for batch in self.loader:
            yield to_torchreid_video_batch(batch, self.mean, self.std)


class VideoDataManager(ImageDataManager):
    """torchreid's video data manager over fastreid's tracklet datasets and loaders (see the module docstring).

    Args:
        root, sources, targets, height, width, transforms, norm_mean, norm_std, use_gpu, split_id, combineall,
            workers, num_instances, train_sampler: as :class:`~fastreid.torchreid.data.ImageDataManager`;
            ``sources`` / ``targets`` are video keys (:func:`video_dataset_keys`) or fastreid video datasets.
            ``num_instances`` counts tracklets per identity for ``RandomIdentitySampler``.
        batch_size_train, batch_size_test: tracklets per batch (``batch_size`` is accepted for the first, as in
            torchreid's examples).
        seq_len: frames sampled per tracklet.
        sample_method: ``"evenly"``, ``"random"`` or ``"all"`` (test only; see the module docstring).
        sample_method_train: the training method when it differs from ``sample_method``.
        frame_chunk: the most frames the video engines run through the model at once in testing (0 = all).

    Attributes:
        As :class:`~fastreid.torchreid.data.ImageDataManager`; batches of ``train_loader`` and ``test_loader``
        hold ``img`` ``B x seq_len x 3 x H x W`` (``1 x n x 3 x H x W`` with ``"all"`` at test time).
    """

    data_type = "video"

    def __init__(
        self,
        root: str = "",
        sources: Names = None,
        targets: Names = None,
        height: int = 256,
        width: int = 128,
        transforms: Names = "random_flip",
        norm_mean: Optional[Sequence[float]] = None,
        norm_std: Optional[Sequence[float]] = None,
        use_gpu: bool = True,
        split_id: int = 0,
        combineall: bool = False,
        batch_size_train: int = 3,
        batch_size_test: int = 3,
        workers: int = 4,
        num_instances: int = 4,
        num_cams: int = 1,
        num_datasets: int = 1,
        train_sampler: str = "RandomSampler",
        seq_len: int = 15,
        sample_method: str = "evenly",
        sample_method_train: Optional[str] = None,
        frame_chunk: int = 128,
        batch_size: Optional[int] = None,
    ) -> None:
        for arg, value in (("sample_method", sample_method), ("sample_method_train", sample_method_train)):
            if value is not None and value not in SAMPLE_METHODS:
                raise ValueError(f"{arg} must be one of {', '.join(SAMPLE_METHODS)}, got {value!r}")
        if sample_method_train == "all":
            raise ValueError('sample_method_train "all" gives tracklets of different lengths, which cannot be '
                             'batched for training: use "evenly" or "random"')
        if seq_len < 1 or frame_chunk < 0:
            raise ValueError(f"seq_len must be >= 1 and frame_chunk >= 0, got {seq_len} and {frame_chunk}")
        self.seq_len = int(seq_len)
        self.sample_method = sample_method
        self.sample_method_train = sample_method_train or ("evenly" if sample_method == "all" else sample_method)
        self.frame_chunk = int(frame_chunk)
        for key in _keys(sources) + _keys(targets):
            resolve_video_dataset(key)  # a clear error before anything is loaded
        super().__init__(
            root=root, sources=sources, targets=targets, height=height, width=width, transforms=transforms,
            norm_mean=norm_mean, norm_std=norm_std, use_gpu=use_gpu, split_id=split_id, combineall=combineall,
            batch_size_train=batch_size_train, batch_size_test=batch_size_test, workers=workers,
            num_instances=num_instances, num_cams=num_cams, num_datasets=num_datasets, train_sampler=train_sampler,
            batch_size=batch_size)

    def _config(self, **kwargs: Any):
        cfg = super()._config(**kwargs)
        cfg.merge_from_list([
            "DATASETS.NAMES", tuple(resolve_video_dataset(s) for s in self.sources),
            "DATASETS.TESTS", tuple(resolve_video_dataset(t) for t in self.targets),
            "INPUT.SEQ_LEN", self.seq_len,
            "INPUT.SAMPLE_METHOD_TRAIN", self.sample_method_train,
            "INPUT.SAMPLE_METHOD_TEST", self.sample_method,
            "TEST.FRAME_CHUNK", self.frame_chunk,
        ])
        return cfg

    def _train_loader(self, names: List[str], sampler: str) -> TorchreidVideoTrainLoader:
        image_view = super()._train_loader([resolve_video_dataset(n) for n in names], sampler)
        loader = TorchreidVideoTrainLoader(image_view.loader, len(image_view), self.norm_mean, self.norm_std)
        if not isinstance(loader.dataset, TrackletDataset):
            raise TypeError(f"Sources {names} did not give a tracklet training set")
        return loader

    def _add_target(self, key: str) -> None:
        super()._add_target(key)  # the evaluation set and records; the torchreid views are replaced below
        self.test_loader[key] = {}
        for split, items in self.test_dataset[key].items():
            subset = TrackletDataset(items, self._test_transform, relabel=False, seq_len=self.seq_len,
                                     sample_method=self.sample_method,
                                     skip_bad_images=self.cfg.DATALOADER.SKIP_BAD_IMAGES)
            loader, _ = build_reid_test_loader(subset, len(items), batch_size=self.cfg.TEST.IMS_PER_BATCH,
                                               num_workers=self.cfg.DATALOADER.NUM_WORKERS)
            self.test_loader[key][split] = TorchreidVideoTestLoader(loader, self.norm_mean, self.norm_std)


def _keys(value: Names) -> List[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
