"""MODEL.PRECISION wired through training (DefaultTrainer's step, the torchreid-style engine) and inference
(inference_on_dataset, DefaultTrainer.test, the predictor's and the torchreid-style FeatureExtractor)."""
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from fastreid.engine import AMPTrainer, DefaultTrainer, SimpleTrainer
from fastreid.engine import trainer as trainer_module
from fastreid.evaluation import inference_on_dataset
from fastreid.predictor import FeatureExtractor
from fastreid.torchreid.engine import Engine
from fastreid.torchreid.models import build_model as build_torchreid_model
from fastreid.torchreid.utils import FeatureExtractor as TorchreidFeatureExtractor
from fastreid.utils import precision

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "predictor"))
# _KeepOutputs keeps the raw outputs (FeatureCollector would cast them to float32 itself).
from test_inference_plumbing import _KeepOutputs  # noqa: E402
from tiny_reid import one_thread  # noqa: E402,F401  (fixture)
from tiny_reid import tiny_cfg as tiny_model_cfg  # noqa: E402
from tiny_reid import tiny_model  # noqa: E402
from trainer_utils import tiny_cfg  # noqa: E402


@pytest.fixture
def cpu_speedup(monkeypatch):
    """Makes "auto" see a CPU with avx512_bf16 whose bf16 matmuls run ``speedup`` times as fast as fp32."""
    def patch(speedup):
        monkeypatch.setattr(precision, "cpu_features", lambda: {
            "model": "Test CPU", "flags": ["avx512_bf16"], "native_bf16": True, "torch_capability": "AVX512",
            "source": "test"})
        monkeypatch.setattr(precision, "bf16_matmul_speedup", lambda: speedup)
    return patch


# --- training -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("requested,speedup,expected", [
    ("fp32", 9.0, None), ("bf16", 0.1, torch.bfloat16), ("fp16", 9.0, torch.float16),
    ("auto", 3.0, torch.bfloat16), ("auto", 0.5, None)])
def test_default_trainer_builds_the_step_of_the_resolved_precision(tmp_path, cpu_speedup, requested, speedup,
                                                                   expected):
    cpu_speedup(speedup)
    # FP16_ENABLED on: on a CPU it must not force autocast where "auto" finds bf16 slower.
    cfg = tiny_cfg(str(tmp_path / "data"), str(tmp_path / "out"),
                   ["MODEL.PRECISION", requested, "SOLVER.FP16_ENABLED", "True"])
    step = DefaultTrainer(cfg)._trainer
    if expected is None:
        assert type(step) is SimpleTrainer
    else:
        assert type(step) is AMPTrainer and step.precision == expected
        assert (step.grad_scaler is not None) == (expected == torch.float16)


def test_default_trainer_test_passes_the_resolved_precision(tmp_path, cpu_speedup, monkeypatch):
    cpu_speedup(3.0)
    seen = []
    monkeypatch.setattr(trainer_module, "inference_on_dataset",
                        lambda *args, **kwargs: seen.append(kwargs.get("precision")) or {})
    cfg = tiny_cfg(str(tmp_path / "data"), str(tmp_path / "out"), ["MODEL.PRECISION", "auto"])
    DefaultTrainer.test(cfg, torch.nn.Linear(1, 1), evaluators=[None])
    cfg.MODEL.PRECISION = "fp32"
    DefaultTrainer.test(cfg, torch.nn.Linear(1, 1), evaluators=[None])
    assert seen == [torch.bfloat16, None]


def test_torchreid_engine_amp_resolves_like_model_precision(cpu_speedup):
    datamanager = SimpleNamespace(train_loader=None, test_loader=None)
    cpu_speedup(0.5)
    assert Engine(datamanager, use_gpu=False).precision is None  # torchreid's default: float32
    assert Engine(datamanager, use_gpu=False, amp=True).precision is None  # auto: bf16 slower here
    engine = Engine(datamanager, use_gpu=False, amp="bf16")
    assert engine.precision == torch.bfloat16 and engine.amp
    cpu_speedup(3.0)
    assert Engine(datamanager, use_gpu=False, amp=True).precision == torch.bfloat16
    assert Engine(datamanager, use_gpu=False, amp="auto").precision == torch.bfloat16
    engine = Engine(datamanager, use_gpu=False, amp=False)
    assert engine.precision is None and not engine.amp
    with pytest.raises(ValueError, match="MODEL.PRECISION must be one of"):
        Engine(datamanager, use_gpu=False, amp="half")


# --- inference ------------------------------------------------------------------------------------------------


@pytest.fixture
def tiny(tmp_path):
    """(cfg, eval-mode ResNet-18 Baseline at 32x16, two input batches of 5 images)."""
    cfg = tiny_model_cfg(tmp_path)
    generator = torch.Generator().manual_seed(1)
    batches = [{"images": torch.rand(5, 3, 32, 16, generator=generator) * 255} for _ in range(2)]
    return cfg, tiny_model(cfg), batches


@pytest.mark.parametrize("flip", [False, True])
def test_bf16_inference_gives_float32_features_close_to_fp32(tiny, flip):
    _, model, batches = tiny
    fp32 = inference_on_dataset(model, batches, _KeepOutputs(), flip_test=flip)["feats"]
    bf16 = inference_on_dataset(model, batches, _KeepOutputs(), flip_test=flip, precision=torch.bfloat16)["feats"]
    assert fp32.dtype == bf16.dtype == torch.float32 and bf16.shape == fp32.shape == (10, 512)
    assert not torch.equal(bf16, fp32)  # autocast did run
    assert F.cosine_similarity(bf16, fp32).min() > 0.999


@pytest.mark.parametrize("requested,dtype", [("fp32", None), ("bf16", torch.bfloat16)])
def test_predictor_feature_extractor_honours_model_precision(tiny, requested, dtype):
    cfg, model, batches = tiny
    cfg.MODEL.PRECISION = requested
    extractor = FeatureExtractor.from_config(cfg, model=model)  # batch size TEST.IMS_PER_BATCH = 5
    assert extractor.precision == dtype
    images = torch.cat([b["images"] for b in batches])
    expected = inference_on_dataset(model, batches, _KeepOutputs(), precision=dtype)["feats"]
    feats = extractor(images)
    assert feats.dtype == torch.float32 and torch.equal(feats, expected)
    assert FeatureExtractor.from_config(cfg, model=model, precision=torch.float16).precision == torch.float16


def test_torchreid_feature_extractor_precision(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "resnet18.pth"
    torch.save(build_torchreid_model("resnet18", num_classes=1, pretrained=False).state_dict(), weights)
    options = {"image_size": (32, 16), "device": "cpu", "verbose": False}
    fp32 = TorchreidFeatureExtractor("resnet18", str(weights), **options)
    bf16 = TorchreidFeatureExtractor("resnet18", str(weights), precision="bf16", **options)
    assert fp32.precision is None and bf16.precision == torch.bfloat16
    images = torch.rand(4, 3, 32, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        reference = fp32.model(images)
    torch.testing.assert_close(fp32(images), reference, rtol=0, atol=0)
    feats = bf16(images)
    assert feats.dtype == torch.float32 and not torch.equal(feats, reference)
    assert F.cosine_similarity(feats, reference).min() > 0.999
