"""Meta-architectures, registered in ``META_ARCH_REGISTRY`` by class name."""
from .baseline import Baseline, ReIDMetaArch
from .build import META_ARCH_REGISTRY, build_model
from .distiller import Distiller
from .mgn import MGN
from .moco import MoCo
from .video_baseline import VideoBaseline

__all__ = [
    "META_ARCH_REGISTRY", "MGN", "Baseline", "Distiller", "MoCo", "ReIDMetaArch", "VideoBaseline", "build_model",
]
