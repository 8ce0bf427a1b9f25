"""The project's own config keys. CHANGE: rename the function and the keys after your project."""
from fastreid.config import CfgNode as CN

__all__ = ["add_template_config"]


def add_template_config(cfg: CN) -> None:
    """Add the template's keys to ``cfg`` in place; train_net.py calls this before merging any YAML file.

    Keys used only by this project live here, not in fastreid's defaults. Give each a comment with its unit.
    """
    # TemplateDataset: the folder under DATASETS.ROOT holding bounding_box_train/, query/, bounding_box_test/.
    cfg.DATASETS.TEMPLATE = CN()
    cfg.DATASETS.TEMPLATE.DIR = "my_dataset"
    # FeatureNormLoss: weight of the term (listed in MODEL.LOSSES.NAME to be used).
    cfg.MODEL.LOSSES.FEATURE_NORM = CN()
    cfg.MODEL.LOSSES.FEATURE_NORM.SCALE = 0.001
