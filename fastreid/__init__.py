"""fastreid: a PyTorch framework for re-identification."""

__version__ = "0.1.0"
