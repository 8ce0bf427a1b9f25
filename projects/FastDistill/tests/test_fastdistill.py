"""FastDistill end to end: a teacher trained by the project's train_net.py, then a student distilled from the
teacher's saved config and weights, with the distillation term in its metrics."""
import importlib.util
import json

import pytest
import torch

from fastreid.config import get_cfg
from fastreid.engine import default_argument_parser
from fastreid.modeling import META_ARCH_REGISTRY

from .conftest import PROJECT

CONFIGS = PROJECT / "configs"


def _tiny_config(tmp_path, config, output, **kd):
    """``config`` shrunk to a few seconds: 8 identities of 32x16 images, one epoch of two iterations."""
    kd_lines = "".join(f"  {key}: {value}\n" for key, value in kd.items())
    path = tmp_path / f"{output}.yml"
    path.write_text(f"""_BASE_: {CONFIGS / config}
MODEL:
  DEVICE: cpu
  CHANNELS_LAST: False
{"KD:" if kd else ""}
{kd_lines}
DATASETS:
  ROOT: {tmp_path / "data"}
  SYNTHETIC: {{NUM_IDS: 8, IMAGES_PER_ID: 4}}
DATALOADER: {{NUM_INSTANCE: 2}}
SOLVER: {{IMS_PER_BATCH: 8, WARMUP_ITERS: 1, MAX_EPOCH: 1, STEPS: [1], CHECKPOINT_PERIOD: 1, LOG_PERIOD: 1}}
TEST: {{EVAL_PERIOD: 1, IMS_PER_BATCH: 16}}
SEED: 0
OUTPUT_DIR: {tmp_path / output}
""")
    return str(path)


def _train_net():
    spec = importlib.util.spec_from_file_location("fastdistill_train_net", PROJECT / "train_net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(train_net, config_file):
    return train_net.main(default_argument_parser().parse_args(["--config-file", config_file]))


def test_importing_the_package_registers_distiller():
    import fastdistill

    assert META_ARCH_REGISTRY.get("Distiller") is fastdistill.Distiller


def test_project_configs_merge_and_name_the_teacher_run():
    teacher, student = get_cfg(), get_cfg()
    teacher.merge_from_file(str(CONFIGS / "r34_teacher.yml"))
    student.merge_from_file(str(CONFIGS / "kd_r34_r18.yml"))
    assert teacher.MODEL.BACKBONE.DEPTH == "34x" and student.MODEL.BACKBONE.DEPTH == "18x"
    assert student.MODEL.META_ARCHITECTURE == "Distiller"
    assert student.KD.MODEL_CONFIG == f"{teacher.OUTPUT_DIR}/config.yaml"
    assert student.KD.MODEL_WEIGHTS == f"{teacher.OUTPUT_DIR}/model_final.pth"
    alone = get_cfg()
    alone.merge_from_file(str(CONFIGS / "r18_student.yml"))
    assert alone.SOLVER.MAX_EPOCH == student.SOLVER.MAX_EPOCH and alone.SOLVER.STEPS == student.SOLVER.STEPS


@pytest.mark.slow
def test_student_distils_from_a_teacher_trained_by_train_net(tmp_path):
    train_net = _train_net()
    teacher_results = _run(train_net, _tiny_config(tmp_path, "r34_teacher.yml", "teacher"))
    assert "mAP" in teacher_results["SyntheticPerson"]
    teacher_dir = tmp_path / "teacher"
    student = _tiny_config(tmp_path, "kd_r34_r18.yml", "student", MODEL_CONFIG=teacher_dir / "config.yaml",
                           MODEL_WEIGHTS=teacher_dir / "model_final.pth")
    results = _run(train_net, student)
    assert "mAP" in results["SyntheticPerson"]
    lines = [json.loads(line) for line in (tmp_path / "student" / "metrics.json").read_text().splitlines()]
    trained = [line for line in lines if "loss_cls" in line]
    assert len(trained) == 2  # 16 training images / 8 per batch
    assert all(line["loss_kd"] > 0 for line in trained)
    # The student's checkpoint holds the ResNet-18 student only, not the ResNet-34 teacher.
    state = torch.load(tmp_path / "student" / "model_final.pth", weights_only=True)["model"]
    assert "backbone.layer4.1.conv1.weight" in state and "backbone.layer4.2.conv1.weight" not in state
