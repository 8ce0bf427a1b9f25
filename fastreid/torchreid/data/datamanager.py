"""torchreid's ``ImageDataManager`` as a fastreid config plus fastreid's own datasets, samplers and loaders.

Argument mapping (torchreid -> fastreid config, kept in ``ImageDataManager.cfg``):

- ``root``, ``sources``, ``targets`` -> DATASETS.ROOT, NAMES, TESTS (dataset keys via
  :func:`fastreid.torchreid.data.resolve_image_dataset`); ``combineall`` -> DATASETS.COMBINEALL; ``split_id``
  -> DATASETS.SPLIT_ID and CUHK03.SPLIT_ID; ``cuhk03_labeled``, ``cuhk03_classic_split`` -> DATASETS.CUHK03.*;
  ``market1501_500k`` -> DATASETS.MARKET1501.WITH_500K.
- ``height``, ``width`` -> INPUT.SIZE_TRAIN and SIZE_TEST. ``transforms``: ``random_flip`` -> INPUT.DO_FLIP
  (p 0.5); ``random_crop`` -> INPUT.DO_PAD (pad ``width // 16`` then crop back: the same shift range as
  torchreid's enlarge-by-1/8-and-crop, without its rescale); ``random_patch`` -> INPUT.RPT (p 0.5);
  ``color_jitter`` -> INPUT.CJ (always, brightness 0.2, contrast 0.15, as torchreid); ``random_erase`` ->
  INPUT.REA (p 0.5, filled with the value torchreid's erasing writes into the normalised image).
- ``norm_mean``, ``norm_std`` (0-1 scale) -> MODEL.PIXEL_MEAN / PIXEL_STD (0-255 scale): fastreid models
  normalise their 0-255 input with them. The torchreid batches of this manager (``img``) are normalised
  already, as torchreid's are.
- ``batch_size_train`` -> SOLVER.IMS_PER_BATCH (all processes together), ``batch_size_test`` ->
  TEST.IMS_PER_BATCH, ``workers`` -> DATALOADER.NUM_WORKERS, ``num_instances`` -> DATALOADER.NUM_INSTANCE,
  ``train_sampler`` -> DATALOADER.SAMPLER_TRAIN (see :mod:`fastreid.torchreid.data.samplers`; with
  ``RandomDomainSampler`` / ``RandomDatasetSampler``, NUM_INSTANCE is ``batch_size // num_cams`` / ``//
  num_datasets``),
  ``use_gpu`` -> MODEL.DEVICE ``cuda`` when a GPU is present.
"""
import logging
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from PIL import Image
from torch.utils.data import DataLoader

from fastreid.config import CfgNode, get_cfg
from fastreid.data import CommDataset, build_reid_test_loader, build_reid_train_loader, build_test_set, build_train_set
from fastreid.data.transforms import build_transforms

from .datasets import resolve_image_dataset
from .loaders import TorchreidTestLoader, TorchreidTrainLoader, normalize_images
from .samplers import train_sampler_settings

logger = logging.getLogger(__name__)

__all__ = ["ImageDataManager", "TORCHREID_TRANSFORMS"]

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
TORCHREID_TRANSFORMS = ("random_flip", "random_crop", "random_patch", "random_erase", "color_jitter")

Names = Union[str, Sequence[str], None]


def _as_list(value: Names) -> List[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _transform_names(transforms: Names) -> List[str]:
    names = [t.lower() for t in _as_list(transforms) if t.lower() != "none"]
    unknown = [t for t in names if t not in TORCHREID_TRANSFORMS]
    if unknown:
        raise ValueError(f"Unknown transforms {unknown}; torchreid's are {', '.join(TORCHREID_TRANSFORMS)}")
    return names


class _RepeatTransform:
    """``k`` independent draws of a transform, stacked: ``k x 3 x H x W`` (torchreid's ``k_tfm``)."""

    def __init__(self, transform: Callable, k: int) -> None:
        self.transform, self.k = transform, k

    def __call__(self, img: Image.Image) -> torch.Tensor:
        return torch.stack([self.transform(img) for _ in range(self.k)])


def _epoch_batches(pids: Sequence[int], batch_size: int, num_instances: int, sampler: str) -> int:
    """torchreid's ``len(train_loader)``: images of an epoch // batch size (incomplete batch dropped).

    An epoch of ``RandomIdentitySampler`` counts each identity's images rounded down to whole groups of K, as
    torchreid's does; the group samplers' epochs (random length in torchreid) count every image once.
    """
    if sampler != "NaiveIdentitySampler":
        return max(1, len(pids) // batch_size)
    counts: Dict[int, int] = {}
    for pid in pids:
        counts[pid] = counts.get(pid, 0) + 1
    # Each identity contributes its images rounded down to whole groups of K (short ones padded to K).
    images = sum(max(n, num_instances) // num_instances * num_instances for n in counts.values())
    return max(1, images // batch_size)


class ImageDataManager:
    """torchreid's image data manager over fastreid's datasets and loaders (see the module docstring).

    Args:
        root: datasets root ('' = $FASTREID_DATASETS, else ``datasets``).
        sources: dataset key(s) to train on.
        targets: dataset key(s) to test on; default ``sources``.
        height, width: image size.
        transforms: training augmentations, names from :data:`TORCHREID_TRANSFORMS`.
        k_tfm: augmented copies of each training image (``img`` is then a list of ``k_tfm`` tensors).
        norm_mean, norm_std: normalisation on the 0-1 scale; default ImageNet's.
        use_gpu: pin memory and set MODEL.DEVICE to ``cuda`` when a GPU is available.
        split_id: split of datasets with several (CUHK03, VIPeR, GRID, ...).
        combineall: train on train + query + gallery of the sources (junk and gallery-only ids left out).
        load_train_targets: also build ``train_loader_t`` over the targets' training sets.
        batch_size_train, batch_size_test: batch sizes. ``batch_size`` is accepted for ``batch_size_train``
            (the spelling of torchreid's older examples).
        workers: loader worker processes.
        num_instances: K images per identity for ``RandomIdentitySampler``.
        num_cams, num_datasets: cameras / datasets per batch of ``RandomDomainSampler`` /
            ``RandomDatasetSampler``.
        train_sampler, train_sampler_t: sampler names of the source and target train loaders.
        cuhk03_labeled, cuhk03_classic_split, market1501_500k: dataset options.

    Attributes:
        cfg: the fastreid config holding all of the above, for fastreid's trainer and evaluator.
        num_train_pids, num_train_cams: identities and cameras of the (combined) training set.
        train_loader, train_loader_t: :class:`TorchreidTrainLoader` (``train_loader_t`` None unless
            ``load_train_targets``).
        test_loader: ``{target: {"query": loader, "gallery": loader}}`` of :class:`TorchreidTestLoader`.
        test_dataset: ``{target: {"query": records, "gallery": records}}``.
    """

    data_type = "image"

    def __init__(
        self,
        root: str = "",
        sources: Names = None,
        targets: Names = None,
        height: int = 256,
        width: int = 128,
        transforms: Names = "random_flip",
        k_tfm: int = 1,
        norm_mean: Optional[Sequence[float]] = None,
        norm_std: Optional[Sequence[float]] = None,
        use_gpu: bool = True,
        split_id: int = 0,
        combineall: bool = False,
        load_train_targets: bool = False,
        batch_size_train: int = 32,
        batch_size_test: int = 32,
        workers: int = 4,
        num_instances: int = 4,
        num_cams: int = 1,
        num_datasets: int = 1,
        train_sampler: str = "RandomSampler",
        train_sampler_t: str = "RandomSampler",
        cuhk03_labeled: bool = False,
        cuhk03_classic_split: bool = False,
        market1501_500k: bool = False,
        batch_size: Optional[int] = None,
    ) -> None:
        self.sources = _as_list(sources)
        if not self.sources:
            raise ValueError("ImageDataManager needs sources (a dataset key or a list of keys)")
        self.targets = _as_list(targets) or list(self.sources)
        if load_train_targets and set(self.sources) & set(self.targets):
            raise ValueError(f"load_train_targets needs targets disjoint from sources; both have "
                             f"{sorted(set(self.sources) & set(self.targets))}")
        if k_tfm < 1:
            raise ValueError(f"k_tfm must be at least 1, got {k_tfm}")
        self.height, self.width = int(height), int(width)
        self.norm_mean = list(norm_mean) if norm_mean is not None else list(IMAGENET_MEAN)
        self.norm_std = list(norm_std) if norm_std is not None else list(IMAGENET_STD)
        self.use_gpu = bool(use_gpu and torch.cuda.is_available())
        self.transforms = _transform_names(transforms)
        self.k_tfm = int(k_tfm)
        batch_size_train = batch_size if batch_size is not None else batch_size_train
        self._sampler_args = dict(batch_size=batch_size_train, num_instances=num_instances, num_cams=num_cams,
                                  num_datasets=num_datasets)
        self.cfg = self._config(
            root=root, split_id=split_id, combineall=combineall, batch_size_train=batch_size_train,
            batch_size_test=batch_size_test, workers=workers, train_sampler=train_sampler,
            cuhk03_labeled=cuhk03_labeled,
            cuhk03_classic_split=cuhk03_classic_split, market1501_500k=market1501_500k,
        )
        self._test_transform = build_transforms(self.cfg, is_train=False)

        self.train_loader = self._train_loader([resolve_image_dataset(s) for s in self.sources], train_sampler)
        self.num_train_pids = self.train_loader.dataset.num_classes
        self.num_train_cams = self.train_loader.dataset.num_cameras
        self.train_loader_t: Optional[TorchreidTrainLoader] = None
        if load_train_targets:
            self.train_loader_t = self._train_loader([resolve_image_dataset(t) for t in self.targets],
                                                     train_sampler_t)

        self.test_loader: Dict[str, Dict[str, TorchreidTestLoader]] = {}
        self.test_dataset: Dict[str, Dict[str, List[Any]]] = {}
        self._eval_sets: Dict[str, Tuple[CommDataset, int]] = {}
        for name in self.targets:
            self._add_target(name)
        logger.info("ImageDataManager: sources %s (%d ids, %d cameras, %d train images), targets %s",
                    self.sources, self.num_train_pids, self.num_train_cams, len(self.train_loader.dataset),
                    self.targets)

    def _config(self, *, root, split_id, combineall, batch_size_train, batch_size_test, workers, train_sampler,
                cuhk03_labeled, cuhk03_classic_split, market1501_500k) -> CfgNode:
        cfg = get_cfg()
        sampler, num_instance = train_sampler_settings(train_sampler, **self._sampler_args)
        size = [self.height, self.width]
        names = self.transforms
        mean255 = [m * 255 for m in self.norm_mean]
        std255 = [s * 255 for s in self.norm_std]
        cfg.merge_from_list([
            "MODEL.DEVICE", "cuda" if self.use_gpu else "cpu",
            "MODEL.PIXEL_MEAN", mean255, "MODEL.PIXEL_STD", std255,
            "INPUT.SIZE_TRAIN", size, "INPUT.SIZE_TEST", size,
            "INPUT.DO_FLIP", "random_flip" in names, "INPUT.FLIP_PROB", 0.5,
            "INPUT.DO_PAD", "random_crop" in names, "INPUT.PADDING", max(1, self.width // 16),
            "INPUT.CJ.ENABLED", "color_jitter" in names, "INPUT.CJ.PROB", 1.0, "INPUT.CJ.BRIGHTNESS", 0.2,
            "INPUT.CJ.CONTRAST", 0.15, "INPUT.CJ.SATURATION", 0.0, "INPUT.CJ.HUE", 0.0,
            "INPUT.RPT.ENABLED", "random_patch" in names, "INPUT.RPT.PROB", 0.5,
            # torchreid erases the normalised image with norm_mean: this 0-255 value normalises to it.
            "INPUT.REA.ENABLED", "random_erase" in names, "INPUT.REA.PROB", 0.5,
            "INPUT.REA.VALUE", [m + m * s for m, s in zip(mean255, self.norm_std)],
            "DATASETS.ROOT", root or "",
            "DATASETS.NAMES", tuple(resolve_image_dataset(s) for s in self.sources),
            "DATASETS.TESTS", tuple(resolve_image_dataset(t) for t in self.targets),
            "DATASETS.COMBINEALL", bool(combineall),
            "DATASETS.SPLIT_ID", int(split_id), "DATASETS.CUHK03.SPLIT_ID", int(split_id),
            "DATASETS.CUHK03.LABELED", bool(cuhk03_labeled),
            "DATASETS.CUHK03.CLASSIC_SPLIT", bool(cuhk03_classic_split),
            "DATASETS.MARKET1501.WITH_500K", bool(market1501_500k),
            "SOLVER.IMS_PER_BATCH", int(batch_size_train), "TEST.IMS_PER_BATCH", int(batch_size_test),
            "DATALOADER.NUM_WORKERS", int(workers), "DATALOADER.NUM_INSTANCE", num_instance,
            "DATALOADER.SAMPLER_TRAIN", sampler,
        ])
        return cfg

    def _train_loader(self, names: List[str], sampler: str) -> TorchreidTrainLoader:
        cfg = self.cfg.clone()
        cfg.DATALOADER.SAMPLER_TRAIN, cfg.DATALOADER.NUM_INSTANCE = train_sampler_settings(
            sampler, **self._sampler_args)
        transform = build_transforms(cfg, is_train=True)
        if self.k_tfm > 1:
            transform = _RepeatTransform(transform, self.k_tfm)
        train_set = build_train_set(cfg, names=names, transform=transform)
        loader = build_reid_train_loader(cfg, train_set=train_set)
        per_epoch = _epoch_batches(train_set.pids, cfg.SOLVER.IMS_PER_BATCH, cfg.DATALOADER.NUM_INSTANCE,
                                   cfg.DATALOADER.SAMPLER_TRAIN)
        return TorchreidTrainLoader(loader, per_epoch, self.norm_mean, self.norm_std)

    def _add_target(self, key: str) -> None:
        test_set, num_query = build_test_set(self.cfg, resolve_image_dataset(key), self._test_transform)
        self._eval_sets[key] = (test_set, num_query)
        records = {"query": test_set.img_items[:num_query], "gallery": test_set.img_items[num_query:]}
        self.test_dataset[key] = records
        self.test_loader[key] = {}
        for split, items in records.items():
            subset = CommDataset(items, self._test_transform, relabel=False,
                                 skip_bad_images=self.cfg.DATALOADER.SKIP_BAD_IMAGES)
            loader, _ = build_reid_test_loader(subset, len(items), batch_size=self.cfg.TEST.IMS_PER_BATCH,
                                               num_workers=self.cfg.DATALOADER.NUM_WORKERS)
            self.test_loader[key][split] = TorchreidTestLoader(loader, self.norm_mean, self.norm_std)

    def fetch_test_loaders(self, name: str) -> Tuple[TorchreidTestLoader, TorchreidTestLoader]:
        """``(query_loader, gallery_loader)`` of the target ``name``."""
        loaders = self._target(self.test_loader, name)
        return loaders["query"], loaders["gallery"]

    def return_query_and_gallery_by_name(self, name: str) -> Tuple[List[Any], List[Any]]:
        """``(query, gallery)`` records ``(img_path, pid, camid, ...)`` of the target ``name``."""
        records = self._target(self.test_dataset, name)
        return records["query"], records["gallery"]

    def evaluation_loader(self, name: str) -> Tuple[DataLoader, int]:
        """fastreid's test loader of target ``name`` (query then gallery, fastreid batch keys) and the number
        of queries: what :class:`fastreid.evaluation.ReidEvaluator` consumes."""
        test_set, num_query = self._target(self._eval_sets, name)
        return build_reid_test_loader(test_set, num_query, batch_size=self.cfg.TEST.IMS_PER_BATCH,
                                      num_workers=self.cfg.DATALOADER.NUM_WORKERS)

    def preprocess_pil_img(self, img: Image.Image) -> torch.Tensor:
        """The test transform of one PIL image: normalised float ``3 x height x width``."""
        return normalize_images(self._test_transform(img.convert("RGB")), self.norm_mean, self.norm_std)

    def _target(self, table: Dict[str, Any], name: str) -> Any:
        if name not in table:
            raise KeyError(f"'{name}' is not a target of this data manager; targets: {', '.join(self.targets)}")
        return table[name]
