"""The project's config keys, added to a config before the project's YAML files are merged."""
from fastreid.config import CfgNode as CN

__all__ = ["add_partialreid_config"]


def add_partialreid_config(cfg: CN) -> None:
    """Add the PartialSyntheticPerson crop keys and the DSR evaluation keys to ``cfg`` in place."""
    # PartialSyntheticPerson: each query keeps a random fraction in [MIN_FRACTION, MAX_FRACTION] of its height,
    # from one of SIDES ("top", "bottom"), drawn with SEED.
    cfg.DATASETS.PARTIAL_SYNTHETIC = CN()
    cfg.DATASETS.PARTIAL_SYNTHETIC.MIN_FRACTION = 0.5
    cfg.DATASETS.PARTIAL_SYNTHETIC.MAX_FRACTION = 0.75
    cfg.DATASETS.PARTIAL_SYNTHETIC.SIDES = ["top", "bottom"]
    cfg.DATASETS.PARTIAL_SYNTHETIC.SEED = 0
    # DSREvaluator: ridge weight β of the reconstruction (> 0) and the k×k pooling windows (stride 1) whose
    # outputs form each gallery image's dictionary (1 = the backbone map itself).
    cfg.TEST.DSR = CN()
    cfg.TEST.DSR.REGULARIZER = 0.1
    cfg.TEST.DSR.GALLERY_SCALES = [1, 2]
