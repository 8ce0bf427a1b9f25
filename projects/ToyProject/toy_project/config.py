"""The project's config key, added to a config before the project's YAML files are merged."""
from fastreid.config import CfgNode as CN

__all__ = ["add_toy_config"]


def add_toy_config(cfg: CN) -> None:
    """Add MODEL.LOSSES.RING.SCALE (weight of the ring loss; 0.01 as in Zheng et al. 2018) to ``cfg`` in place."""
    cfg.MODEL.LOSSES.RING = CN()
    cfg.MODEL.LOSSES.RING.SCALE = 0.01
