"""Meta-architectures, registered in ``META_ARCH_REGISTRY`` by class name."""
from .baseline import Baseline, ReIDMetaArch
from .build import META_ARCH_REGISTRY, build_model
from .mgn import MGN

__all__ = ["META_ARCH_REGISTRY", "MGN", "Baseline", "ReIDMetaArch", "build_model"]
