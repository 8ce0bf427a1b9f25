"""``VideoBaseline``: an image backbone run on every frame, temporal pooling, then the Baseline head and losses.

Where the pooling sits: torchreid's video engines train on frames (each frame a sample with its tracklet's
label) and average or max-pool the per-frame *features* only at test time. Here the backbone's per-frame *maps*
are pooled (B·S×C×h×w → B×C×h×w) before the head, so training and test see the same tracklet-level feature:
the classifier and metric losses are computed once per tracklet, and any head works unchanged. With
``TemporalAvgPool``, the head's average pooling and its (eval-mode, affine) BN neck, the features equal
torchreid's ``avg``: the mean of the per-frame image features.
"""
from typing import Any, Dict, Mapping

import torch

from fastreid.config import configurable
from fastreid.modeling.temporal_pool import TemporalPool, build_temporal_pool

from .baseline import Baseline, Batch
from .build import META_ARCH_REGISTRY

__all__ = ["VideoBaseline"]


@META_ARCH_REGISTRY.register()
class VideoBaseline(Baseline):
    """:class:`Baseline` over tracklets: ``B x S x 3 x H x W`` frames → per-frame maps → temporal pool → head.

    A ``B x 3 x H x W`` image batch is taken as tracklets of one frame, so the model also evaluates on image
    test sets (and loads Baseline checkpoints: only the attention pool adds parameters).

    Args:
        temporal_pool: maps ``B x S x C x h x w`` to ``B x C x h x w`` (see
            :mod:`fastreid.modeling.temporal_pool`).
        frame_chunk: in eval mode, the most frames run through the backbone at once (TEST.FRAME_CHUNK); a
            longer tracklet is pooled chunk by chunk with :meth:`TemporalPool.pool_chunks`, so memory does not
            grow with its length. 0 = every frame of the batch at once.
        baseline: ``backbone``, ``heads``, ``losses``, ``pixel_mean``, ``pixel_std`` of :class:`Baseline`.
    """

    @configurable
    def __init__(self, *, temporal_pool: TemporalPool, frame_chunk: int = 0, **baseline: Any) -> None:
        super().__init__(**baseline)
        if frame_chunk < 0:
            raise ValueError(f"frame_chunk (TEST.FRAME_CHUNK) must be >= 0, got {frame_chunk}")
        self.temporal_pool = temporal_pool
        self.frame_chunk = frame_chunk

    @classmethod
    def from_config(cls, cfg) -> Dict:
        args = super().from_config(cfg)
        args["temporal_pool"] = build_temporal_pool(cfg.MODEL.TEMPORAL_POOL, args["backbone"].out_channels)
        args["frame_chunk"] = cfg.TEST.FRAME_CHUNK
        return args

    @staticmethod
    def frames_of(batched_inputs: Batch) -> torch.Tensor:
        """The ``B x S x 3 x H x W`` frames of a batch dict or bare tensor (``B x 3 x H x W`` gets S = 1)."""
        images = batched_inputs["images"] if isinstance(batched_inputs, Mapping) else batched_inputs
        if not isinstance(images, torch.Tensor) or images.dim() not in (4, 5):
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"VideoBaseline expects B x S x 3 x H x W frames (or B x 3 x H x W images), got {shape}")
        return images if images.dim() == 5 else images.unsqueeze(1)

    def frame_maps(self, frames: torch.Tensor) -> torch.Tensor:
        """``B x S x C x h x w`` backbone maps of ``B x S x 3 x H x W`` frames (0-255), in one pass."""
        b, s = frames.shape[:2]
        maps = self.backbone(self.preprocess_image(frames.flatten(0, 1)))
        return maps.view(b, s, *maps.shape[1:])

    def pooled_maps(self, frames: torch.Tensor) -> torch.Tensor:
        """``B x C x h x w`` tracklet maps of ``B x S x 3 x H x W`` frames; in eval mode at most
        ``frame_chunk`` frames go through the backbone at once."""
        b, s = frames.shape[:2]
        chunk = self.frame_chunk
        if self.training or not chunk or b * s <= chunk:
            return self.temporal_pool(self.frame_maps(frames))
        if s <= chunk:  # whole tracklets per pass
            per = chunk // s
            return torch.cat([self.temporal_pool(self.frame_maps(frames[i:i + per])) for i in range(0, b, per)])
        return torch.cat([
            self.temporal_pool.pool_chunks(self.frame_maps(frames[i:i + 1, t:t + chunk]) for t in range(0, s, chunk))
            for i in range(b)
        ])

    def backbone_features(self, batched_inputs: Batch) -> torch.Tensor:
        """The B×C×h×w pooled tracklet maps the head takes: ``batched_inputs`` holds B×S×3×H×W frames (0-255)
        under ``"images"`` or is the frame tensor itself; B×3×H×W is taken as S = 1. :meth:`Baseline.forward`
        then returns the losses of the B tracklets (training) or their B×D features (eval)."""
        return self.pooled_maps(self.frames_of(batched_inputs))
