"""torchreid's config schema (``scripts/default_config.py``) and its mapping onto the torchreid-style API.

:func:`get_default_config` returns torchreid's lower-case tree (``model.name``, ``data.sources``,
``train.lr``, ...) with torchreid's defaults as a :class:`fastreid.config.CfgNode`, so torchreid's YAML files
and ``KEY VALUE`` overrides merge into it unchanged, and a misspelt key fails with fastreid's "did you mean"
error. The ``*_kwargs`` functions turn it into the arguments of this package's API, which in turn builds
fastreid's own config tree (``ImageDataManager.cfg``):

- :func:`imagedata_kwargs` -> :class:`fastreid.torchreid.data.ImageDataManager`;
- :func:`optimizer_kwargs` -> :func:`fastreid.torchreid.optim.build_optimizer`;
- :func:`lr_scheduler_kwargs` -> :func:`fastreid.torchreid.optim.build_lr_scheduler`;
- :func:`engine_run_kwargs` -> ``Engine.run`` of :mod:`fastreid.torchreid.engine`.

Lists of names (``data.sources``, ``data.targets``, ``data.transforms``, ``train.open_layers``,
``train.new_layers``) are tuples in the tree, so an override may also give one bare name
(``data.sources market1501``); the ``*_kwargs`` functions hand them on as lists, as torchreid does.
"""
from typing import Any, Dict, List

import torch

from fastreid.config import CfgNode

__all__ = [
    "DATA_TYPES", "LOSSES", "engine_run_kwargs", "get_default_config", "imagedata_kwargs", "lr_scheduler_kwargs",
    "optimizer_kwargs",
]

#: ``data.type`` values of torchreid: image or video (tracklet) re-id.
DATA_TYPES = ("image", "video")
#: ``loss.name`` values: the engine each selects (ImageSoftmaxEngine, ImageTripletEngine).
LOSSES = ("softmax", "triplet")


def _model(cfg: CfgNode) -> None:
    cfg.model = CfgNode()
    cfg.model.name = "resnet50"  # a torchreid model name (fastreid.torchreid.models.show_avai_models())
    cfg.model.pretrained = True  # ImageNet weights: PRETRAIN_PATH, torch hub cache, or a checked download
    cfg.model.load_weights = ""  # path of weights to load (torchreid checkpoint or state dict)
    cfg.model.resume = ""  # path of a checkpoint to resume training from (model, optimizer, scheduler, epoch)


def _data(cfg: CfgNode) -> None:
    cfg.data = CfgNode()
    cfg.data.type = "image"  # "image" or "video"
    cfg.data.root = "reid-data"  # datasets root; "" = $FASTREID_DATASETS, else datasets/
    cfg.data.sources = ("market1501",)  # dataset keys to train on
    cfg.data.targets = ("market1501",)  # dataset keys to test on
    cfg.data.workers = 4  # data loading worker processes
    cfg.data.split_id = 0  # split index of datasets with several (cuhk03, viper, grid, ...)
    cfg.data.height = 256  # image height, pixels
    cfg.data.width = 128  # image width, pixels
    cfg.data.combineall = False  # train on train + query + gallery of the sources
    cfg.data.transforms = ("random_flip",)  # training augmentations (fastreid.torchreid.data.TORCHREID_TRANSFORMS)
    cfg.data.k_tfm = 1  # independently augmented copies of each training image
    cfg.data.norm_mean = [0.485, 0.456, 0.406]  # normalisation mean, 0-1 scale (ImageNet's)
    cfg.data.norm_std = [0.229, 0.224, 0.225]  # normalisation std, 0-1 scale (ImageNet's)
    cfg.data.save_dir = "log"  # output folder: log file, model/model.pth.tar-N, tensorboard events
    cfg.data.load_train_targets = False  # also load the targets' training sets (train_loader_t)

    cfg.market1501 = CfgNode()
    cfg.market1501.use_500k_distractors = False  # add Market-1501's 500k distractors to the gallery
    cfg.cuhk03 = CfgNode()
    cfg.cuhk03.labeled_images = False  # labelled boxes (False: detected boxes)
    cfg.cuhk03.classic_split = False  # the classic 1367/100 split (False: the 767/700 protocol)
    cfg.cuhk03.use_metric_cuhk03 = False  # CUHK03's single-shot evaluation metric

    cfg.sampler = CfgNode()
    cfg.sampler.train_sampler = "RandomSampler"  # sampler of the source train loader
    cfg.sampler.train_sampler_t = "RandomSampler"  # sampler of the target train loader
    cfg.sampler.num_instances = 4  # images per identity in a batch (RandomIdentitySampler)
    cfg.sampler.num_cams = 1  # cameras per batch (RandomDomainSampler)
    cfg.sampler.num_datasets = 1  # datasets per batch (RandomDatasetSampler)

    # Video re-id (data.type "video"): VideoDataManager's and the video engines' arguments.
    cfg.video = CfgNode()
    cfg.video.seq_len = 15  # images sampled from a tracklet
    cfg.video.sample_method = "evenly"  # how images are sampled from a tracklet
    cfg.video.pooling_method = "avg"  # how features are pooled over a tracklet


def _train(cfg: CfgNode) -> None:
    cfg.train = CfgNode()
    cfg.train.optim = "adam"  # adam, amsgrad, sgd, rmsprop or radam
    cfg.train.lr = 0.0003  # learning rate (of the new layers with staged_lr)
    cfg.train.weight_decay = 5e-4  # L2 penalty
    cfg.train.max_epoch = 60  # training length, epochs
    cfg.train.start_epoch = 0  # epochs already done (set by model.resume)
    cfg.train.batch_size = 32  # training images per batch
    cfg.train.fixbase_epoch = 0  # epochs training only open_layers, the rest frozen
    cfg.train.open_layers = ("classifier",)  # layers trained during fixbase_epoch
    cfg.train.staged_lr = False  # base layers at lr * base_lr_mult, new_layers at lr
    cfg.train.new_layers = ("classifier",)  # layers at the full lr with staged_lr
    cfg.train.base_lr_mult = 0.1  # learning-rate factor of the base layers with staged_lr
    cfg.train.lr_scheduler = "single_step"  # single_step, multi_step or cosine (stepped once per epoch)
    cfg.train.stepsize = [20]  # epochs at which the rate is multiplied by gamma (single_step: the last entry)
    cfg.train.gamma = 0.1  # learning-rate decay factor
    cfg.train.print_freq = 20  # log every print_freq iterations
    cfg.train.seed = 1  # random seed of python, numpy and torch

    cfg.sgd = CfgNode()
    cfg.sgd.momentum = 0.9  # momentum of sgd and rmsprop
    cfg.sgd.dampening = 0.0  # sgd's momentum dampening
    cfg.sgd.nesterov = False  # sgd's Nesterov momentum
    cfg.rmsprop = CfgNode()
    cfg.rmsprop.alpha = 0.99  # rmsprop's smoothing constant
    cfg.adam = CfgNode()
    cfg.adam.beta1 = 0.9  # decay rate of the first moment (adam, amsgrad, radam)
    cfg.adam.beta2 = 0.999  # decay rate of the second moment (adam, amsgrad, radam)


def _loss_and_test(cfg: CfgNode) -> None:
    cfg.loss = CfgNode()
    cfg.loss.name = "softmax"  # softmax (ImageSoftmaxEngine) or triplet (ImageTripletEngine)
    cfg.loss.softmax = CfgNode()
    cfg.loss.softmax.label_smooth = True  # label-smoothed cross-entropy (epsilon 0.1)
    cfg.loss.triplet = CfgNode()
    cfg.loss.triplet.margin = 0.3  # margin of the batch-hard triplet loss
    cfg.loss.triplet.weight_t = 1.0  # weight of the triplet loss
    cfg.loss.triplet.weight_x = 0.0  # weight of the cross-entropy loss (triplet engine)

    cfg.test = CfgNode()
    cfg.test.batch_size = 100  # test images per batch
    cfg.test.dist_metric = "euclidean"  # euclidean or cosine
    cfg.test.normalize_feature = False  # L2-normalise features before the distance
    cfg.test.ranks = [1, 5, 10, 20]  # CMC ranks logged
    cfg.test.evaluate = False  # test only, no training
    cfg.test.eval_freq = -1  # test every eval_freq epochs (-1: only after training)
    cfg.test.start_eval = 0  # first epoch at which periodic tests run
    cfg.test.rerank = False  # k-reciprocal re-ranking
    cfg.test.visrank = False  # write ranked-result images (save_dir/visrank_<target>/)
    cfg.test.visrank_topk = 10  # gallery images per ranked-result row
    # In torchreid's published recipe files (always False there); the activation maps are the how-to's tool.
    cfg.test.visactmap = False


def get_default_config() -> CfgNode:
    """torchreid's config tree with torchreid's defaults (``scripts/default_config.py``), as a fastreid
    :class:`fastreid.config.CfgNode`: its files and overrides merge with fastreid's checks ("did you mean" on
    an unknown key, type checks).

    ``use_gpu`` defaults to whether CUDA is available, as torchreid's ``main`` sets it.
    """
    cfg = CfgNode()
    _model(cfg)
    _data(cfg)
    _train(cfg)
    _loss_and_test(cfg)
    cfg.use_gpu = torch.cuda.is_available()  # train and test on the GPU
    return cfg


def _names(value: Any) -> List[str]:
    return [value] if isinstance(value, str) else list(value)


def imagedata_kwargs(cfg: CfgNode) -> Dict[str, Any]:
    """The arguments of :class:`fastreid.torchreid.data.ImageDataManager` from torchreid's config.

    ``train.batch_size`` and ``test.batch_size`` become ``batch_size_train`` / ``batch_size_test``;
    ``cuhk03.*`` and ``market1501.*`` become ``cuhk03_labeled``, ``cuhk03_classic_split`` and
    ``market1501_500k``; the rest keep their names.
    """
    return {
        "root": cfg.data.root,
        "sources": _names(cfg.data.sources),
        "targets": _names(cfg.data.targets),
        "height": cfg.data.height,
        "width": cfg.data.width,
        "transforms": _names(cfg.data.transforms),
        "k_tfm": cfg.data.k_tfm,
        "norm_mean": list(cfg.data.norm_mean),
        "norm_std": list(cfg.data.norm_std),
        "use_gpu": cfg.use_gpu,
        "split_id": cfg.data.split_id,
        "combineall": cfg.data.combineall,
        "load_train_targets": cfg.data.load_train_targets,
        "batch_size_train": cfg.train.batch_size,
        "batch_size_test": cfg.test.batch_size,
        "workers": cfg.data.workers,
        "num_instances": cfg.sampler.num_instances,
        "num_cams": cfg.sampler.num_cams,
        "num_datasets": cfg.sampler.num_datasets,
        "train_sampler": cfg.sampler.train_sampler,
        "train_sampler_t": cfg.sampler.train_sampler_t,
        "cuhk03_labeled": cfg.cuhk03.labeled_images,
        "cuhk03_classic_split": cfg.cuhk03.classic_split,
        "market1501_500k": cfg.market1501.use_500k_distractors,
    }


def videodata_kwargs(cfg: CfgNode) -> Dict[str, Any]:
    """The arguments of :class:`fastreid.torchreid.data.VideoDataManager` from torchreid's config: those of
    :func:`imagedata_kwargs` that a video manager takes, plus ``video.seq_len`` and ``video.sample_method``
    (batch sizes count tracklets)."""
    image = imagedata_kwargs(cfg)
    for key in ("k_tfm", "load_train_targets", "train_sampler_t", "cuhk03_labeled", "cuhk03_classic_split",
                "market1501_500k"):
        del image[key]
    return {**image, "seq_len": cfg.video.seq_len, "sample_method": cfg.video.sample_method}


def optimizer_kwargs(cfg: CfgNode) -> Dict[str, Any]:
    """The arguments of :func:`fastreid.torchreid.optim.build_optimizer` (after the model) from torchreid's
    config: ``train.optim/lr/weight_decay/staged_lr/new_layers/base_lr_mult``, ``sgd.*``, ``rmsprop.alpha`` and
    ``adam.beta1/beta2``."""
    return {
        "optim": cfg.train.optim,
        "lr": cfg.train.lr,
        "weight_decay": cfg.train.weight_decay,
        "momentum": cfg.sgd.momentum,
        "sgd_dampening": cfg.sgd.dampening,
        "sgd_nesterov": cfg.sgd.nesterov,
        "rmsprop_alpha": cfg.rmsprop.alpha,
        "adam_beta1": cfg.adam.beta1,
        "adam_beta2": cfg.adam.beta2,
        "staged_lr": cfg.train.staged_lr,
        "new_layers": _names(cfg.train.new_layers),
        "base_lr_mult": cfg.train.base_lr_mult,
    }


def lr_scheduler_kwargs(cfg: CfgNode) -> Dict[str, Any]:
    """The arguments of :func:`fastreid.torchreid.optim.build_lr_scheduler` (after the optimizer) from
    ``train.lr_scheduler/stepsize/gamma/max_epoch``."""
    return {
        "lr_scheduler": cfg.train.lr_scheduler,
        "stepsize": list(cfg.train.stepsize),
        "gamma": cfg.train.gamma,
        "max_epoch": cfg.train.max_epoch,
    }


def engine_run_kwargs(cfg: CfgNode) -> Dict[str, Any]:
    """The arguments of the engine's ``run`` from torchreid's config (``test.evaluate`` is ``test_only``,
    ``data.save_dir`` is ``save_dir``, ``cuhk03.use_metric_cuhk03`` is ``use_metric_cuhk03``)."""
    return {
        "save_dir": cfg.data.save_dir,
        "max_epoch": cfg.train.max_epoch,
        "start_epoch": cfg.train.start_epoch,
        "fixbase_epoch": cfg.train.fixbase_epoch,
        "open_layers": _names(cfg.train.open_layers),
        "start_eval": cfg.test.start_eval,
        "eval_freq": cfg.test.eval_freq,
        "test_only": cfg.test.evaluate,
        "print_freq": cfg.train.print_freq,
        "dist_metric": cfg.test.dist_metric,
        "normalize_feature": cfg.test.normalize_feature,
        "visrank": cfg.test.visrank,
        "visrank_topk": cfg.test.visrank_topk,
        "use_metric_cuhk03": cfg.cuhk03.use_metric_cuhk03,
        "ranks": list(cfg.test.ranks),
        "rerank": cfg.test.rerank,
    }
