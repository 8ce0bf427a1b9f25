"""torchreid's Python API as a thin layer over fastreid: ``import fastreid.torchreid as torchreid``.

Submodules mirror torchreid's: ``data`` (data managers and dataset registration), ``models`` (``build_model``),
``optim`` (optimisers and learning-rate schedulers), ``engine`` (training and testing) and ``utils``
(checkpoints, feature extraction, model complexity). Everything they build is fastreid's own: datasets, samplers
and loaders, models, plain ``torch.optim`` objects, the training loop and hooks, and the evaluator.
"""
from . import data, engine, models, optim, utils

__all__ = ["data", "engine", "models", "optim", "utils"]
