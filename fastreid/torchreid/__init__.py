"""torchreid's Python API as a thin layer over fastreid: ``import fastreid.torchreid as torchreid``.

Submodules mirror torchreid's: ``data`` (data managers and dataset registration), ``models`` (``build_model``)
and ``optim`` (optimisers and learning-rate schedulers). Everything they build is fastreid's own: datasets,
samplers and loaders, models, and plain ``torch.optim`` objects.
"""
from . import data, models, optim

__all__ = ["data", "models", "optim"]
