"""torchreid's data API (``torchreid.data``) on fastreid's datasets, samplers and loaders."""
from .datamanager import TORCHREID_TRANSFORMS, ImageDataManager
from .datasets import (TORCHREID_IMAGE_DATASETS, ImageDataset, image_dataset_keys, register_image_dataset,
                       resolve_image_dataset)
from .loaders import TorchreidTestLoader, TorchreidTrainLoader, normalize_images, to_torchreid_batch
from .samplers import (TORCHREID_SAMPLERS, CameraGroupSampler, DatasetGroupSampler, OrderedTrainingSampler,
                       resolve_train_sampler, train_sampler_settings)
from .video import (TORCHREID_VIDEO_DATASETS, TorchreidVideoTestLoader, TorchreidVideoTrainLoader, VideoDataManager,
                    VideoDataset, register_video_dataset, resolve_video_dataset, to_torchreid_video_batch,
                    video_dataset_keys)

__all__ = [
    "CameraGroupSampler", "DatasetGroupSampler", "ImageDataManager", "ImageDataset", "OrderedTrainingSampler",
    "TORCHREID_IMAGE_DATASETS", "TORCHREID_SAMPLERS",
    "TORCHREID_TRANSFORMS", "TorchreidTestLoader", "TorchreidTrainLoader", "image_dataset_keys",
    "normalize_images", "register_image_dataset", "resolve_image_dataset", "resolve_train_sampler",
    "to_torchreid_batch", "train_sampler_settings",
    "TORCHREID_VIDEO_DATASETS", "TorchreidVideoTestLoader", "TorchreidVideoTrainLoader", "VideoDataManager",
    "VideoDataset", "register_video_dataset", "resolve_video_dataset", "to_torchreid_video_batch",
    "video_dataset_keys",
]
