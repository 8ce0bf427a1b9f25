"""torchreid's video engines: the image engines on frames, with per-tracklet pooling of test features.

As in torchreid, training flattens a batch of ``B`` tracklets of ``S`` frames into ``B·S`` frames, each labelled
with its tracklet's identity, so the losses are the image engines' (fastreid's cross-entropy and batch-hard
triplet); at test time each frame goes through the model and a tracklet's feature is the average (``"avg"``) or
element-wise maximum (``"max"``) of its frames' features. Frames go through the model at most
``datamanager.frame_chunk`` at a time (TEST.FRAME_CHUNK), which bounds memory with ``sample_method="all"`` and
gives the same features as one pass. Testing is the base engine's: fastreid's inference loop and
:class:`~fastreid.evaluation.ReidEvaluator` on tracklet features.
"""
from typing import Any, Mapping, Tuple, Union

import torch

from .image import ImageSoftmaxEngine, ImageTripletEngine

__all__ = ["POOLING_METHODS", "VideoEngineMixin", "VideoSoftmaxEngine", "VideoTripletEngine"]

POOLING_METHODS = ("avg", "max")


class VideoEngineMixin:
    """Frame flattening for training and pooled tracklet features for testing (torchreid's video engines).

    Attributes:
        pooling_method: ``"avg"`` or ``"max"``.
    """

    pooling_method = "avg"

    def set_pooling_method(self, pooling_method: str) -> None:
        """Check and set :attr:`pooling_method`."""
        if pooling_method not in POOLING_METHODS:
            raise ValueError(f"pooling_method must be one of {', '.join(POOLING_METHODS)}, got {pooling_method!r}")
        self.pooling_method = pooling_method

    def parse_data_for_train(self, data: Mapping[str, Any]) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(frames, pids)``: ``B x S x 3 x H x W`` tracklets as ``B·S x 3 x H x W`` frames with ``B·S`` pids."""
        images, pids = data["img"], data["pid"]
        if images.dim() == 5:
            b, s = images.shape[:2]
            images = images.flatten(0, 1)
            pids = pids.view(b, 1).expand(b, s).reshape(b * s)
        return images, pids

    def extract_features(self, images: torch.Tensor) -> torch.Tensor:
        """``B x D`` tracklet features of ``B x S x 3 x H x W`` normalised frames (``B x 3 x H x W``: one frame
        each), pooled over frames by :attr:`pooling_method`; at most ``frame_chunk`` frames per model call."""
        if images.dim() == 4:
            images = images.unsqueeze(1)
        b, s = images.shape[:2]
        frames = images.flatten(0, 1)
        chunk = int(getattr(self.datamanager, "frame_chunk", 0)) or len(frames)
        feats = torch.cat([self.model(frames[i:i + chunk]) for i in range(0, len(frames), chunk)])
        feats = feats.view(b, s, -1)
        return feats.mean(dim=1) if self.pooling_method == "avg" else feats.amax(dim=1)


class VideoSoftmaxEngine(VideoEngineMixin, ImageSoftmaxEngine):
    """torchreid's softmax engine for video re-id (cross-entropy ``loss_x`` on every frame).

    Args:
        datamanager: a :class:`fastreid.torchreid.data.VideoDataManager`.
        model, optimizer, scheduler, use_gpu, label_smooth, amp: see
            :class:`~fastreid.torchreid.engine.ImageSoftmaxEngine`.
        pooling_method: ``"avg"`` or ``"max"`` over a tracklet's frame features at test time.
    """

    def __init__(self, datamanager, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler=None,
                 use_gpu: bool = True, label_smooth: bool = True, pooling_method: str = "avg", *,
                 amp: Union[bool, str] = False) -> None:
        self.set_pooling_method(pooling_method)
        super().__init__(datamanager, model, optimizer, scheduler=scheduler, use_gpu=use_gpu,
                         label_smooth=label_smooth, amp=amp)


class VideoTripletEngine(VideoEngineMixin, ImageTripletEngine):
    """torchreid's triplet engine for video re-id: ``weight_t`` × batch-hard triplet + ``weight_x`` ×
    cross-entropy over the frames of a batch (each frame labelled with its tracklet's identity).

    Args:
        datamanager: a :class:`fastreid.torchreid.data.VideoDataManager`.
        model, optimizer, margin, weight_t, weight_x, scheduler, use_gpu, label_smooth, amp: see
            :class:`~fastreid.torchreid.engine.ImageTripletEngine`.
        pooling_method: ``"avg"`` or ``"max"`` over a tracklet's frame features at test time.
    """

    def __init__(self, datamanager, model: torch.nn.Module, optimizer: torch.optim.Optimizer, margin: float = 0.3,
                 weight_t: float = 1, weight_x: float = 1, scheduler=None, use_gpu: bool = True,
                 label_smooth: bool = True, pooling_method: str = "avg", *, amp: Union[bool, str] = False) -> None:
        self.set_pooling_method(pooling_method)
        super().__init__(datamanager, model, optimizer, margin=margin, weight_t=weight_t, weight_x=weight_x,
                         scheduler=scheduler, use_gpu=use_gpu, label_smooth=label_smooth, amp=amp)
