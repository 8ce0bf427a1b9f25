"""The project's config keys, added to a config before the project's YAML files are merged."""
from fastreid.config import CfgNode as CN

__all__ = ["add_dml_config"]


def add_dml_config(cfg: CN) -> None:
    """Add the MODEL.DML keys of deep mutual learning to ``cfg`` in place."""
    cfg.MODEL.DML = CN()
    # Weight of each network's KL mimicry term (torchreid's weight_ml).
    cfg.MODEL.DML.WEIGHT = 1.0
    # Softmax temperature of both networks' predictions in the mimicry term; the term is scaled by T² so its
    # gradients keep their size as T changes.
    cfg.MODEL.DML.TEMPERATURE = 1.0
    # KEY VALUE overrides of the second network's config, e.g. ["MODEL.BACKBONE.NAME", "build_osnet_backbone",
    # "MODEL.BACKBONE.DEPTH", "x1_0"]; empty builds the same architecture as the first (the two still differ by
    # their random initialisation).
    cfg.MODEL.DML.NET2_OPTS = []
    # Test features: "net1", "net2" or "both" (each L2-normalised, then concatenated).
    cfg.MODEL.DML.DEPLOY = "net1"
