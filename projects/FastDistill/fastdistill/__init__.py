"""FastDistill: fastreid's ``Distiller`` meta-architecture on a teacher trained first (see README.md).

Importing this package makes sure ``Distiller`` is registered in ``META_ARCH_REGISTRY``; the project adds no
config keys (KD.* are core keys) and reuses ``DefaultTrainer`` unchanged.
"""
from fastreid.modeling.meta_arch.distiller import Distiller

__all__ = ["Distiller"]
