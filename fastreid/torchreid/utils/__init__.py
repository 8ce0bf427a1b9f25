"""torchreid's ``utils`` (checkpoints, layer freezing, feature extraction, model complexity, activation maps)
on fastreid's checkpoint code, predictor, fvcore counter and activation maps."""
from .actmap import visualize_actmap
from .feature_extractor import FeatureExtractor, TorchreidInput
from .model_complexity import compute_model_complexity
from .torchtools import (count_num_param, load_checkpoint, load_pretrained_weights, open_all_layers,
                         open_specified_layers, resume_from_checkpoint, save_checkpoint)

__all__ = [
    "FeatureExtractor", "TorchreidInput", "compute_model_complexity", "count_num_param", "load_checkpoint",
    "load_pretrained_weights", "open_all_layers", "open_specified_layers", "resume_from_checkpoint",
    "save_checkpoint", "visualize_actmap",
]
