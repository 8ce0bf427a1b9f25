"""The template trains and evaluates from its train_net.py. CHANGE: test your own components here too."""
import importlib.util
import json

from fastreid.config import get_cfg
from fastreid.data.datasets import build_dataset
from fastreid.engine import default_argument_parser

from .conftest import PROJECT

CONFIG = str(PROJECT / "tests" / "tiny_synthetic.yml")


def _tiny_opts(tmp_path):
    """Where the test run keeps its generated data and its output."""
    return ["DATASETS.ROOT", str(tmp_path / "data"), "OUTPUT_DIR", str(tmp_path / "out")]


def _train_net():
    spec = importlib.util.spec_from_file_location("template_train_net", PROJECT / "train_net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_net_trains_two_iterations_with_the_project_components_and_evaluates(tmp_path):
    from template_project import add_template_config

    train_net = _train_net()
    args = default_argument_parser().parse_args(["--config-file", CONFIG, *_tiny_opts(tmp_path)])
    results = train_net.main(args)
    assert 0 < results["SyntheticPerson"]["mAP"] <= 100
    lines = [json.loads(line) for line in (tmp_path / "out" / "metrics.json").read_text().splitlines()]
    trained = [line for line in lines if "loss_feature_norm" in line]
    assert len(trained) == 2  # 16 training images / 8 per batch
    assert 0 < trained[0]["elapsed_time"] < trained[1]["elapsed_time"]  # the hook ran at every step

    # The template dataset reads any folder of "<pid>_c<cam>_*.jpg" images, such as the set generated above.
    cfg = get_cfg()
    add_template_config(cfg)
    cfg.merge_from_file(CONFIG)
    cfg.merge_from_list(_tiny_opts(tmp_path) + ["DATASETS.TEMPLATE.DIR", "SyntheticPerson"])
    ours, reference = build_dataset("TemplateDataset", cfg), build_dataset("SyntheticPerson", cfg)
    assert (ours.query, ours.gallery) == (reference.query, reference.gallery)
    assert [r[0] for r in ours.train] == [r[0] for r in reference.train]
