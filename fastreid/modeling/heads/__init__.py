"""Reid heads, registered in ``REID_HEADS_REGISTRY`` by class name."""
from .build import REID_HEADS_REGISTRY, build_heads
from .embedding_head import ClasHead, EmbeddingHead
from .pcb_head import PCBHead
from .reid_arch_heads import HACNNHead, MuDeepHead, ResNetMidHead
from .torchreid_head import TorchreidHead

__all__ = [
    "REID_HEADS_REGISTRY",
    "ClasHead",
    "EmbeddingHead",
    "HACNNHead",
    "MuDeepHead",
    "PCBHead",
    "ResNetMidHead",
    "TorchreidHead",
    "build_heads",
]
