"""Data layer: datasets, transforms, samplers and the train / test loaders."""
from . import datasets, samplers, transforms
from .build import build_reid_test_loader, build_reid_train_loader, build_test_set, build_train_set
from .common import CommDataset
from .data_utils import BadImageError, read_image
from .datasets import DATASET_REGISTRY
from .transforms import TRANSFORM_REGISTRY
from .validation import DatasetCheckError, check_datasets
from .video import SAMPLE_METHODS, TrackletDataset, collate_tracklets, sample_frame_indices
