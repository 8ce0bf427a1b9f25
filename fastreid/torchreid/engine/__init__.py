"""torchreid's engines (``torchreid.engine``) on fastreid's training loop, hooks and evaluator."""
from .engine import Engine
from .image import CrossEntropyLoss, ImageSoftmaxEngine, ImageTripletEngine, TripletLoss
from .loop import EngineTrainer
from .video import POOLING_METHODS, VideoEngineMixin, VideoSoftmaxEngine, VideoTripletEngine

__all__ = ["CrossEntropyLoss", "Engine", "EngineTrainer", "ImageSoftmaxEngine", "ImageTripletEngine", "TripletLoss",
           "POOLING_METHODS", "VideoEngineMixin", "VideoSoftmaxEngine", "VideoTripletEngine"]
