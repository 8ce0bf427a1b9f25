"""The project's config key (fast-reid's FastRetri name), added to a config before its YAML files are merged."""
from fastreid.config import CfgNode as CN

__all__ = ["add_retri_config"]


def add_retri_config(cfg: CN) -> None:
    """Add TEST.RECALLS to ``cfg`` in place: the K of the reported Recall@K (the first one is the checkpoint
    metric). fast-reid's INPUT.CROP_SIZE / SCALE / RATIO are fastreid's INPUT.CROP.SIZE / SCALE / RATIO."""
    cfg.TEST.RECALLS = [1, 2, 4, 8, 16, 32]
