"""Other frameworks' checkpoint layouts read as fastreid's (registered in ``CHECKPOINT_LAYOUT_REGISTRY``)."""
from . import fast_reid, torchreid

__all__ = ["fast_reid", "torchreid"]
