"""Other frameworks' checkpoint layouts read as fastreid's (registered in ``CHECKPOINT_LAYOUT_REGISTRY``)."""
from . import backbone_files, fast_reid, torchreid

__all__ = ["backbone_files", "fast_reid", "torchreid"]
