"""torchreid's unified command line (``scripts/main.py``) on the torchreid-style API::

    python tools/torchreid_main.py --config-file configs/torchreid/recipes/im_r50_softmax_256x128_amsgrad.yaml \
        --transforms random_flip random_erase --root $DATA
    python -m fastreid.torchreid.cli --config-file CFG -s dukemtmcreid -t dukemtmcreid --root $DATA \
        data.save_dir log/r50_duke
    python tools/torchreid_main.py --config-file CFG --root $DATA \
        model.load_weights log/r50_duke/model/model.pth.tar-60 test.evaluate True

The config is torchreid's schema (:mod:`fastreid.torchreid.config`): its defaults, then ``--config-file``, then
``-s/-t/--transforms/--root``, then the ``KEY VALUE`` overrides; an unknown key fails with "did you mean". The
run is torchreid's: seed, log file ``data.save_dir/train.log`` (``test.log`` with ``test.evaluate``; appended
to, holding the whole command where the engine's ``log.txt`` holds its run), data manager, model
(``loss.name`` softmax or triplet), optimizer and schedule, ``model.load_weights`` / ``model.resume``, then the
engine's ``run``. Everything it builds is fastreid's (loaders, model, trainer, evaluator).
"""
import argparse
import logging
import os
from typing import List, Optional, Sequence

import torch

from fastreid.config import CfgNode, ConfigError
from fastreid.utils.env import collect_env_info, seed_all_rng
from fastreid.utils.logger import log_to_file, setup_logger

from . import data, engine, models, optim
from .config import (DATA_TYPES, LOSSES, engine_run_kwargs, get_default_config, imagedata_kwargs,
                     lr_scheduler_kwargs, optimizer_kwargs, videodata_kwargs)
from .utils import compute_model_complexity, load_pretrained_weights, resume_from_checkpoint

__all__ = ["build_datamanager", "build_engine", "build_parser", "check_config", "load_torchreid_config", "main",
           "parse_args"]

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """torchreid's ``scripts/main.py`` arguments: ``--config-file``, ``-s``, ``-t``, ``--transforms``, ``--root``
    and the ``KEY VALUE`` overrides after them."""
    parser = argparse.ArgumentParser(
        description="Train and test a re-id model with torchreid's config schema, on fastreid.",
        epilog="example: --config-file configs/torchreid/recipes/im_r50_softmax_256x128_amsgrad.yaml "
               "--root DATA model.load_weights log/resnet50_market1501_softmax/model/model.pth.tar-60 "
               "test.evaluate True",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--config-file", type=str, default="", help="path to config file")
    parser.add_argument("-s", "--sources", type=str, nargs="+", help="source datasets (delimited by space)")
    parser.add_argument("-t", "--targets", type=str, nargs="+", help="target datasets (delimited by space)")
    parser.add_argument("--transforms", type=str, nargs="+", help="data augmentation")
    parser.add_argument("--root", type=str, default="", help="path to data root")
    parser.add_argument("opts", nargs=argparse.REMAINDER,
                        help="config overrides as dotted KEY VALUE pairs after the flags, e.g. test.evaluate True")
    return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse torchreid's command line with :func:`build_parser`.

    ``-s``, ``-t`` and ``--transforms`` take every word that follows them, so in torchreid overrides written
    right after them (``--transforms random_flip data.save_dir log``) would be taken as names. Names never
    contain a dot and config keys always do: from the first dotted word on, such a list is moved to the
    overrides.
    """
    args = build_parser().parse_args(argv)
    moved: List[str] = []
    for name in ("sources", "targets", "transforms"):
        words = getattr(args, name)
        cut = next((i for i, w in enumerate(words or []) if "." in w), None)
        if cut is not None:
            setattr(args, name, words[:cut] or None)
            moved += words[cut:]
    args.opts = moved + list(args.opts or [])
    return args


def load_torchreid_config(config_file: str = "", sources: Optional[Sequence[str]] = None,
                          targets: Optional[Sequence[str]] = None, transforms: Optional[Sequence[str]] = None,
                          root: str = "", opts: Sequence[str] = ()) -> CfgNode:
    """torchreid's config of a run: defaults, ``config_file``, the command-line flags, then ``opts``.

    Args:
        config_file: a YAML file in torchreid's schema ("" for none).
        sources, targets, transforms, root: ``-s``, ``-t``, ``--transforms``, ``--root`` (None / "" keep the
            file's values).
        opts: ``[KEY, VALUE, ...]`` overrides in dotted form, e.g. ``["test.evaluate", "True"]``.

    Returns:
        The frozen config.

    Raises:
        ConfigError: an unknown key (with the closest valid key), a badly typed value or a missing file.
    """
    cfg = get_default_config()
    if config_file:
        cfg.merge_from_file(config_file)
    flags: List = ["data.root", root] if root else []
    for key, names in (("data.sources", sources), ("data.targets", targets), ("data.transforms", transforms)):
        if names:
            flags += [key, list(names)]
    cfg.merge_from_list(flags)
    cfg.merge_from_list(list(opts))
    cfg.freeze()
    return cfg


def check_config(cfg: CfgNode) -> None:
    """Reject settings this command line cannot run, before anything is built.

    Raises:
        ValueError: an unknown ``data.type`` or ``loss.name``; ``test.visactmap`` True; the triplet loss without
            cross-entropy (``loss.triplet.weight_x`` 0) with ``train.fixbase_epoch`` > 0, where only the
            classifier would train but it is outside the loss (torchreid's check).
    """
    if cfg.data.type not in DATA_TYPES:
        raise ValueError(f"data.type '{cfg.data.type}' is not one of {list(DATA_TYPES)}")
    if cfg.loss.name not in LOSSES:
        raise ValueError(f"loss.name '{cfg.loss.name}' is not one of {list(LOSSES)}")
    if cfg.test.visactmap:
        raise ValueError("test.visactmap True: activation maps are drawn by tools/visualize_actmap.py (or the "
                         "how-to's visualisation); set test.visactmap False")
    if cfg.loss.name == "triplet" and cfg.loss.triplet.weight_x == 0 and cfg.train.fixbase_epoch > 0:
        raise ValueError("loss.triplet.weight_x is 0, so the classifier is outside the loss, but "
                         f"train.fixbase_epoch {cfg.train.fixbase_epoch} trains only open_layers "
                         f"{list(cfg.train.open_layers)}: set train.fixbase_epoch 0 or loss.triplet.weight_x > 0")


def build_datamanager(cfg: CfgNode) -> data.ImageDataManager:
    """The data manager of ``cfg``: :class:`~fastreid.torchreid.data.ImageDataManager` or, with ``data.type``
    video, :class:`~fastreid.torchreid.data.VideoDataManager`."""
    check_config(cfg)
    if cfg.data.type == "video":
        return data.VideoDataManager(**videodata_kwargs(cfg))
    return data.ImageDataManager(**imagedata_kwargs(cfg))


def build_engine(cfg: CfgNode, datamanager: data.ImageDataManager, model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, scheduler=None) -> "engine.Engine":
    """The softmax (``loss.name`` softmax) or triplet engine with ``cfg``'s loss settings: the image engines, or
    the video ones with ``video.pooling_method`` when ``data.type`` is video."""
    video = cfg.data.type == "video"
    common = dict(optimizer=optimizer, scheduler=scheduler, use_gpu=cfg.use_gpu,
                  label_smooth=cfg.loss.softmax.label_smooth)
    if video:
        common["pooling_method"] = cfg.video.pooling_method
    if cfg.loss.name == "softmax":
        softmax = engine.VideoSoftmaxEngine if video else engine.ImageSoftmaxEngine
        return softmax(datamanager, model, **common)
    triplet = engine.VideoTripletEngine if video else engine.ImageTripletEngine
    return triplet(datamanager, model, margin=cfg.loss.triplet.margin, weight_t=cfg.loss.triplet.weight_t,
                   weight_x=cfg.loss.triplet.weight_x, **common)


def _run(cfg: CfgNode) -> "engine.Engine":
    seed_all_rng(cfg.train.seed)
    logger.info("Show configuration\n%s", cfg.dump())
    logger.info("Collecting env info ...\n%s", collect_env_info())
    if cfg.use_gpu:
        torch.backends.cudnn.benchmark = True

    datamanager = build_datamanager(cfg)
    logger.info("Building model: %s", cfg.model.name)
    model = models.build_model(name=cfg.model.name, num_classes=datamanager.num_train_pids, loss=cfg.loss.name,
                               pretrained=cfg.model.pretrained, use_gpu=cfg.use_gpu)
    num_params, flops = compute_model_complexity(model, (1, 3, cfg.data.height, cfg.data.width))
    logger.info("Model complexity: params=%s flops=%s", f"{num_params:,}", f"{flops:,}")
    if cfg.model.load_weights:
        load_pretrained_weights(model, cfg.model.load_weights)

    optimizer = optim.build_optimizer(model, **optimizer_kwargs(cfg))
    scheduler = optim.build_lr_scheduler(optimizer, **lr_scheduler_kwargs(cfg))
    run_kwargs = engine_run_kwargs(cfg)
    if cfg.model.resume:
        run_kwargs["start_epoch"] = resume_from_checkpoint(cfg.model.resume, model, optimizer=optimizer,
                                                           scheduler=scheduler)

    logger.info("Building %s-engine for %s-reid", cfg.loss.name, cfg.data.type)
    runner = build_engine(cfg, datamanager, model, optimizer, scheduler)
    runner.run(**run_kwargs)
    return runner


def main(argv: Optional[List[str]] = None) -> "engine.Engine":
    """Run torchreid's command line (``argv``, default ``sys.argv[1:]``) and return the engine.

    A config error (unknown key, bad value, missing file) exits with argparse's usage message.
    """
    args = parse_args(argv)
    try:
        cfg = load_torchreid_config(args.config_file, args.sources, args.targets, args.transforms, args.root,
                                    args.opts)
    except ConfigError as e:
        build_parser().error(str(e))
    check_config(cfg)
    setup_logger(name="fastreid")
    log_name = "test.log" if cfg.test.evaluate else "train.log"
    with log_to_file(os.path.join(cfg.data.save_dir, log_name)):
        return _run(cfg)


if __name__ == "__main__":
    main()
