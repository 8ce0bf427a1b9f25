"""Reid heads, registered in ``REID_HEADS_REGISTRY`` by class name."""
from .build import REID_HEADS_REGISTRY, build_heads
from .embedding_head import ClasHead, EmbeddingHead
from .torchreid_head import TorchreidHead

__all__ = ["REID_HEADS_REGISTRY", "ClasHead", "EmbeddingHead", "TorchreidHead", "build_heads"]
