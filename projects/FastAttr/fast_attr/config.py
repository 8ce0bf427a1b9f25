"""The project's config keys (fast-reid's FastAttr names), added to a config before its YAML files are merged."""
from fastreid.config import CfgNode as CN

__all__ = ["add_attr_config"]


def add_attr_config(cfg: CN) -> None:
    """Add the keys of FastAttr to ``cfg`` in place.

    * MODEL.LOSSES.BCE.WEIGHT_ENABLED: weight each attribute's positives by exp(1 - r) and negatives by exp(r),
      r = its positive ratio in the training set (:class:`~fast_attr.loss.BinaryCrossEntropyLoss`).
    * MODEL.LOSSES.BCE.SCALE: weight of the ``loss_bce`` term.
    * TEST.THRES: probability at or above which an attribute is predicted present (:class:`AttrEvaluator`).
    """
    cfg.MODEL.LOSSES.BCE = CN()
    cfg.MODEL.LOSSES.BCE.WEIGHT_ENABLED = True
    cfg.MODEL.LOSSES.BCE.SCALE = 1.0
    cfg.TEST.THRES = 0.5
