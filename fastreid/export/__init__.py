"""Deployment: ONNX and TorchScript export of reid models, onnxruntime inference and parity checks.

Exported graphs take N×3×H×W float images on the 0-255 scale (normalisation inside) and return N×D features::

    cfg = export_cfg("configs/Market1501/bagtricks_R50.yml", ["MODEL.WEIGHTS", "model_final.pth"])
    model = build_export_model(cfg)
    export_onnx(model, "out/reid.onnx", input_size=tuple(cfg.INPUT.SIZE_TEST))
    features = OnnxFeatureExtractor("out/reid.onnx")(load_images(["a.jpg"], (256, 128)))
"""
from .images import load_images
from .onnx_export import INPUT_NAME, OUTPUT_NAME, OnnxFeatureExtractor, export_onnx
from .torchscript import export_torchscript
from .verify import Agreement, check_agreement, compare_features, random_images
from .wrapper import FeatureExtractor, build_export_model, export_cfg, model_device

__all__ = [
    "Agreement",
    "FeatureExtractor",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "OnnxFeatureExtractor",
    "build_export_model",
    "check_agreement",
    "compare_features",
    "export_cfg",
    "export_onnx",
    "export_torchscript",
    "load_images",
    "model_device",
    "random_images",
]
