"""torchreid's base ``Engine`` on fastreid's training loop, hooks, checkpoints and evaluator.

``engine.run(...)`` builds a :class:`~fastreid.torchreid.engine.loop.EngineTrainer` (a fastreid
:class:`~fastreid.engine.TrainerBase` whose hooks do torchreid's epoch work) and trains with fastreid's own step
(:class:`~fastreid.engine.SimpleTrainer`, or :class:`~fastreid.engine.AMPTrainer` when ``amp`` resolves to
an autocast dtype, as MODEL.PRECISION does); ``engine.test(...)`` evaluates with
:class:`~fastreid.evaluation.ReidEvaluator` on the data manager's fastreid test loaders. Nothing here is a
second loop or evaluator.

A subclass gives its losses in one of two ways:
- fastreid's way, :meth:`Engine.compute_losses` returning named loss tensors: the step (autocast, gradient
  clipping, the NaN guard, DDP synchronisation) is fastreid's. The image engines do this.
- torchreid's way, overriding :meth:`Engine.forward_backward` to run the whole step itself and return a dict of
  numbers, as torchreid's how-to describes ("Design your own Engine"); those numbers are logged.
"""
import logging
import os
from collections import OrderedDict
from contextlib import ExitStack
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from fastreid.engine import create_ddp_model, unwrap_model
from fastreid.evaluation import (DenseRanking, ReidEvaluator, RerankOptions, compute_distance_matrix,
                                 inference_on_dataset, re_ranking)
from fastreid.evaluation.visualizer import visualize_ranked_results
from fastreid.utils import comm
from fastreid.utils.checkpoint import RNGState
from fastreid.utils.events import get_event_storage
from fastreid.utils.logger import log_to_file, setup_logger
from fastreid.utils.precision import precision_for

from ..data.loaders import normalize_images
from ..utils import load_checkpoint, open_all_layers, open_specified_layers, save_checkpoint
from .loop import EngineTrainer

__all__ = ["Engine"]

logger = logging.getLogger(__name__)

Names = Optional[Union[str, Sequence[str]]]


class _FeatureModel(nn.Module):
    """fastreid's test batches ({"images": 0-255}) into the engine's ``extract_features`` on torchreid images."""

    def __init__(self, engine: "Engine", normalize_feature: bool) -> None:
        super().__init__()
        self.model = engine.model
        self._engine = engine
        self._normalize = normalize_feature
        # The flag only (not .train(), which would reset the model's frozen layers): restored after testing.
        self.training = engine.model.training

    def forward(self, batch: Mapping[str, Any]) -> torch.Tensor:
        dm = self._engine.datamanager
        images = normalize_images(batch["images"], dm.norm_mean, dm.norm_std)
        feats = self._engine.extract_features(images.to(_device_of(self.model)))
        if isinstance(feats, (tuple, list)):
            feats = feats[0]
        return F.normalize(feats, p=2, dim=1) if self._normalize else feats


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


class Engine:
    """torchreid's generic engine: training and testing with a data manager and registered models.

    Args:
        datamanager: a :class:`fastreid.torchreid.data.ImageDataManager`.
        use_gpu: use CUDA when available (torchreid's argument; the model's device decides where batches go).
        amp: fastreid's precision for the default step and for testing, as MODEL.PRECISION: "auto" (bfloat16
            autocast on CPUs with native bf16 where it is faster, else float32), "fp32", "bf16" or "fp16";
            True is "auto" with SOLVER.FP16_ENABLED (on CUDA: bfloat16 where supported, else float16); False
            (the default, torchreid's float32) is "fp32". See :func:`fastreid.utils.precision.resolve_precision`.

    Attributes:
        datamanager, train_loader, test_loader: the data manager and its loaders.
        model, optimizer, scheduler: the model registered as "model" (see :meth:`register_model`).
        epoch, max_epoch: the current epoch (0-based) and the run's epoch count.
        trainer: the running :class:`~fastreid.torchreid.engine.loop.EngineTrainer` (None outside training).
        precision: the autocast dtype ``amp`` resolved to (None: float32); :attr:`amp` says whether it is set.
    """

    def __init__(self, datamanager, use_gpu: bool = True, *, amp: Union[bool, str] = False) -> None:
        self.datamanager = datamanager
        self.train_loader = datamanager.train_loader
        self.test_loader = datamanager.test_loader
        self.use_gpu = bool(use_gpu and torch.cuda.is_available())
        requested = ("auto" if amp else "fp32") if isinstance(amp, bool) else amp
        self.precision = precision_for(requested, "cuda" if self.use_gpu else "cpu", fp16_enabled=amp is True)
        self.writer = None  # torchreid's SummaryWriter slot; fastreid's event writers write tensorboard
        self.epoch = 0
        self.max_epoch = 0
        self.model: Optional[nn.Module] = None
        self.optimizer: Optional[torch.optim.Optimizer] = None
        self.scheduler = None
        self.trainer = None
        self._models: "OrderedDict[str, nn.Module]" = OrderedDict()
        self._optims: "OrderedDict[str, Optional[torch.optim.Optimizer]]" = OrderedDict()
        self._scheds: "OrderedDict[str, Any]" = OrderedDict()

    # ------------------------------------------------------------------------------------------------
    # models, optimizers and schedulers by name (torchreid's bookkeeping)
    # ------------------------------------------------------------------------------------------------
    @property
    def amp(self) -> bool:
        """Whether the forward passes run under autocast (torchreid's ``amp`` flag, from :attr:`precision`)."""
        return self.precision is not None

    def register_model(self, name: str = "model", model: Optional[nn.Module] = None,
                       optim: Optional[torch.optim.Optimizer] = None, sched: Any = None) -> None:
        """Registers a model with its optimizer and scheduler: saved, put in train/eval mode and stepped by
        name. The one named "model" is also :attr:`model` / :attr:`optimizer` / :attr:`scheduler`."""
        if model is None:
            raise ValueError(f"register_model('{name}'): model is None")
        self._models[name] = model
        self._optims[name] = optim
        self._scheds[name] = sched
        if name == "model":
            self.model, self.optimizer, self.scheduler = model, optim, sched

    def get_model_names(self, names: Names = None) -> List[str]:
        """The registered names, or ``names`` after checking that each is registered."""
        if names is None:
            return list(self._models)
        names = [names] if isinstance(names, str) else list(names)
        unknown = [n for n in names if n not in self._models]
        if unknown:
            raise KeyError(f"No registered model named {unknown}; registered: {list(self._models)}")
        return names

    def set_model_mode(self, mode: str = "train", names: Names = None) -> None:
        """Puts the named models (all by default) in ``"train"`` or ``"eval"`` mode."""
        if mode not in ("train", "eval", "test"):
            raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
        for name in self.get_model_names(names):
            self._models[name].train(mode == "train")

    def get_current_lr(self, names: Names = None) -> float:
        """The learning rate of the first parameter group of the first named model's optimizer."""
        optim = self._optims[self.get_model_names(names)[0]]
        return float(optim.param_groups[-1]["lr"]) if optim is not None else 0.0

    def update_lr(self, names: Names = None) -> None:
        """Steps the named models' schedulers (once per epoch, as torchreid does)."""
        for name in self.get_model_names(names):
            if self._scheds[name] is not None:
                self._scheds[name].step()

    def save_model(self, epoch: int, rank1: float, save_dir: str, is_best: bool = False) -> List[str]:
        """Saves ``save_dir/<name>/model.pth.tar-<epoch + 1>`` for every registered model (main process).

        Besides torchreid's keys (``state_dict``, ``epoch``, ``rank1``, ``optimizer``, ``scheduler``) the file
        holds ``fastreid``: the training loader's position and the random generators, with which ``run``
        with ``start_epoch=epoch + 1`` continues exactly as an uninterrupted run.
        """
        if not comm.is_main_process():
            return []
        extra = {"loader": self.train_loader.state_dict(), "rng": RNGState().state_dict()}
        paths = []
        for name in self.get_model_names():
            optim, sched = self._optims[name], self._scheds[name]
            state = {
                "state_dict": unwrap_model(self._models[name]).state_dict(),
                "epoch": epoch + 1,
                "rank1": rank1,
                "optimizer": optim.state_dict() if optim is not None else None,
                "scheduler": sched.state_dict() if sched is not None else None,
                "fastreid": extra,
            }
            paths.append(save_checkpoint(state, os.path.join(save_dir, name), is_best=is_best))
        return paths

    # ------------------------------------------------------------------------------------------------
    # what a subclass defines
    # ------------------------------------------------------------------------------------------------
    def parse_data_for_train(self, data: Mapping[str, Any]):
        """``(images, pids)`` of a torchreid training batch."""
        return data["img"], data["pid"]

    def parse_data_for_eval(self, data: Mapping[str, Any]):
        """``(images, pids, camids)`` of a torchreid test batch."""
        return data["img"], data["pid"], data["camid"]

    def extract_features(self, images: torch.Tensor) -> torch.Tensor:
        """Features of normalised images (the model in eval mode)."""
        return self.model(images)

    def compute_loss(self, criterion, outputs, targets) -> torch.Tensor:
        """``criterion(outputs, targets)``, averaged over ``outputs`` when it is a tuple or list (deep
        supervision, as torchreid does)."""
        if isinstance(outputs, (tuple, list)):
            return sum(criterion(out, targets) for out in outputs) / len(outputs)
        return criterion(outputs, targets)

    def compute_losses(self, data: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        """The named, weighted loss terms of a torchreid batch (``loss_*``), for fastreid's step.

        Subclasses implement this, or override :meth:`forward_backward` instead.
        """
        raise NotImplementedError(
            f"{type(self).__name__} defines no losses: implement compute_losses(data) -> {{'loss_x': tensor, ...}} "
            f"(fastreid's step, with AMP and DDP), or forward_backward(data) running the whole step (torchreid's)")

    def forward_backward(self, data: Mapping[str, Any]) -> Dict[str, float]:
        """One training step on a torchreid batch; returns the numbers to log (``{"loss_x": ..., ...}``).

        The default is fastreid's step on :meth:`compute_losses` (see the module docstring); it runs inside
        :meth:`run`.
        """
        if self.trainer is None:
            raise RuntimeError("forward_backward runs inside engine.run(): the training step is fastreid's")
        return self.trainer.step.train_on_batch(data, self.trainer.data_time)

    def two_stepped_transfer_learning(self, epoch: int, fixbase_epoch: int, open_layers: Names,
                                      model: Optional[nn.Module] = None) -> None:
        """Trains only ``open_layers`` during the first ``fixbase_epoch`` epochs, then every layer.

        Args:
            epoch: the epoch about to run (0-based).
            fixbase_epoch: epochs with the other layers frozen (counted in max_epoch).
            open_layers: layer name(s) trained while the base is frozen (torchreid's attribute names).
            model: default :attr:`model`.
        """
        model = self.model if model is None else model
        if model is None:
            return
        if (epoch + 1) <= fixbase_epoch and open_layers is not None:
            logger.info("* Only train %s (epoch: %d/%d)", open_layers, epoch + 1, fixbase_epoch)
            open_specified_layers(model, open_layers)
        else:
            open_all_layers(model)

    # ------------------------------------------------------------------------------------------------
    # running
    # ------------------------------------------------------------------------------------------------
    def run(self, save_dir: str = "log", max_epoch: int = 0, start_epoch: int = 0, print_freq: int = 10,
            fixbase_epoch: int = 0, open_layers: Names = None, start_eval: int = 0, eval_freq: int = -1,
            test_only: bool = False, dist_metric: str = "euclidean", normalize_feature: bool = False,
            visrank: bool = False, visrank_topk: int = 10, use_metric_cuhk03: bool = False,
            ranks: Sequence[int] = (1, 5, 10, 20), rerank: bool = False) -> Optional[float]:
        """Trains for epochs ``start_epoch .. max_epoch - 1`` and tests, or only tests (``test_only``).

        The arguments keep torchreid's meanings: evaluation (and a checkpoint
        ``save_dir/model/model.pth.tar-<epoch>``) every ``eval_freq`` epochs from ``start_eval`` on and after the
        last epoch; ``fixbase_epoch`` first epochs training only ``open_layers``; ``print_freq`` batches between
        log lines; re-ranking and rank-list images (``save_dir/visrank_<target>/``) only with ``test_only``.
        Tensorboard events, ``metrics.json`` and ``log.txt`` are written to ``save_dir``.

        Returns:
            The rank-1 accuracy (a fraction) of the last test (of the last target), main process.
        """
        if self.model is None:
            raise RuntimeError(f"{type(self).__name__} has no model: register_model('model', model, optimizer)")
        if visrank and not test_only:
            raise ValueError("visrank writes rank lists only when testing: set test_only=True with visrank=True")
        if rerank and not test_only:
            logger.warning("rerank applies to test_only=True runs (as in torchreid); training evaluates without it")
        test_args = dict(dist_metric=dist_metric, normalize_feature=normalize_feature, visrank=visrank,
                         visrank_topk=visrank_topk, save_dir=save_dir, use_metric_cuhk03=use_metric_cuhk03,
                         ranks=ranks, rerank=rerank)
        with ExitStack() as stack:
            if not logging.getLogger("fastreid").handlers:
                setup_logger(distributed_rank=comm.get_rank())  # torchreid's engine talks on stdout
            if save_dir:
                stack.enter_context(log_to_file(save_dir, comm.get_rank()))
            if test_only:
                return self.test(**test_args)
            self.max_epoch = int(max_epoch)
            if comm.get_world_size() > 1:
                self._wrap_ddp(find_unused_parameters=fixbase_epoch > 0)
            self.trainer = EngineTrainer(
                self, save_dir=save_dir, print_freq=print_freq, fixbase_epoch=fixbase_epoch,
                open_layers=open_layers, start_eval=start_eval, eval_freq=eval_freq,
                test_args=dict(test_args, visrank=False, rerank=False),
                custom_step=type(self).forward_backward is not Engine.forward_backward)
            try:
                if start_epoch > 0:
                    self._continue_stream(save_dir, start_epoch)
                return self.trainer.train(int(start_epoch), self.max_epoch)
            finally:
                self.trainer.close()
                self.trainer = None

    def _wrap_ddp(self, find_unused_parameters: bool) -> None:
        for name, model in list(self._models.items()):
            if not isinstance(model, nn.parallel.DistributedDataParallel):
                self._models[name] = create_ddp_model(model, find_unused_parameters=find_unused_parameters)
        self.model = self._models["model"]

    def _continue_stream(self, save_dir: str, start_epoch: int) -> None:
        """Restores the loader position and random generators saved with ``model.pth.tar-<start_epoch>``."""
        path = os.path.join(save_dir, "model", f"model.pth.tar-{start_epoch}")
        extra = load_checkpoint(path).get("fastreid") if os.path.isfile(path) else None
        if not extra:
            logger.info("Starting at epoch %d on a new stream of batches (no %s with a loader position)",
                        start_epoch + 1, path)
            return
        self.train_loader.load_state_dict(extra["loader"])
        RNGState().load_state_dict(extra["rng"])
        self.trainer.step.reset_data_loader()
        logger.info("Continuing the batch stream and random state saved in %s", path)

    @torch.no_grad()
    def test(self, dist_metric: str = "euclidean", normalize_feature: bool = False, visrank: bool = False,
             visrank_topk: int = 10, save_dir: str = "", use_metric_cuhk03: bool = False,
             ranks: Sequence[int] = (1, 5, 10, 20), rerank: bool = False) -> Optional[float]:
        """Evaluates :attr:`model` on every target with :class:`fastreid.evaluation.ReidEvaluator`.

        Logs mAP and the CMC at ``ranks``; during training also records ``Test/<target>/rank1`` and
        ``Test/<target>/mAP`` (fractions) for tensorboard. With ``visrank``, writes one rank-list image per
        query (top ``visrank_topk`` gallery images; green: match, red: not) to ``save_dir/visrank_<target>/``.

        Returns:
            Rank-1 (a fraction) of the last target on the main process, else None.
        """
        rank1 = None
        model = _FeatureModel(self, normalize_feature)
        for name in self.datamanager.targets:
            logger.info("##### Evaluating %s (%s) #####", name, "target")
            loader, num_query = self.datamanager.evaluation_loader(name)
            evaluator = ReidEvaluator(num_query, metric=dist_metric, ranks=ranks,
                                      use_metric_cuhk03=use_metric_cuhk03,
                                      ranking=DenseRanking(rerank=RerankOptions(enabled=rerank)))
            results = inference_on_dataset(model, loader, evaluator, precision=self.precision)
            if visrank:
                self._visualize(evaluator, num_query, dist_metric, rerank, visrank_topk,
                                os.path.join(save_dir, f"visrank_{name}"))
            if not results:  # not the main process
                continue
            logger.info("** Results **\nmAP: %.1f%%\nCMC curve\n%s", results["mAP"],
                        "\n".join(f"Rank-{r:<3}: {results[f'Rank-{r}']:.1f}%" for r in ranks))
            rank1 = results["Rank-1"] / 100
            self._record_test(name, rank1, results["mAP"] / 100)
        return rank1

    def _record_test(self, name: str, rank1: float, mean_ap: float) -> None:
        if self.trainer is None:
            return
        storage = get_event_storage()
        storage.put_scalars(**{f"Test/{name}/rank1": rank1, f"Test/{name}/mAP": mean_ap}, smoothing_hint=False)

    def _visualize(self, evaluator: ReidEvaluator, num_query: int, metric: str, rerank: bool, topk: int,
                   output_dir: str) -> None:
        data = evaluator.collected()
        if data is None:
            return
        query, gallery = data["feats"][:num_query], data["feats"][num_query:]
        dist = re_ranking(query, gallery, metric) if rerank else compute_distance_matrix(query, gallery, metric)
        pids, camids, paths = data["pids"].numpy(), data["camids"].numpy(), data["img_paths"]
        dm = self.datamanager
        visualize_ranked_results(dist, pids[:num_query], pids[num_query:], camids[:num_query],
                                 camids[num_query:], paths[:num_query], paths[num_query:], output_dir,
                                 topk=topk, queries=list(range(num_query)), image_size=(dm.width, dm.height))
