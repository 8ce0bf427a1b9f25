"""DML: deep mutual learning of two re-id networks (torchreid's project) on fastreid's trainer.

Importing this package registers the meta-architecture ``DML``; ``add_dml_config`` adds the MODEL.DML keys.
See README.md.
"""
from .config import add_dml_config
from .losses import mutual_kl_loss
from .meta_arch import DML

__all__ = ["DML", "add_dml_config", "mutual_kl_loss"]
