"""PartialReID: partial re-id by Deep Spatial feature Reconstruction (DSR, He et al., CVPR 2018).

Importing this package registers the meta-architecture ``DSRBaseline`` and the dataset
``PartialSyntheticPerson``; ``DSREvaluator`` ranks by the DSR distance; ``add_partialreid_config`` adds the
project's keys. See README.md.
"""
from .config import add_partialreid_config
from .dataset import PartialSyntheticPerson, crop_to_part
from .dsr import dsr_distance, spatial_dictionary
from .evaluator import DSREvaluator, rank_metrics
from .meta_arch import DSRBaseline

__all__ = ["DSRBaseline", "DSREvaluator", "PartialSyntheticPerson", "add_partialreid_config", "crop_to_part",
           "dsr_distance", "rank_metrics", "spatial_dictionary"]
