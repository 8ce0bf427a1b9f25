"""torchreid's command line and config schema (``fastreid.torchreid.config``, ``fastreid.torchreid.cli``)."""
import glob
import inspect
import os.path as osp
import re

import pytest
import torch
from torch import nn

import fastreid.torchreid as torchreid
from fastreid.config import ConfigError
from fastreid.data.datasets import SyntheticPerson, SyntheticTracklets
from fastreid.torchreid.config import (engine_run_kwargs, get_default_config, imagedata_kwargs, lr_scheduler_kwargs,
                                       optimizer_kwargs, videodata_kwargs)
from fastreid.torchreid.models import named_layers

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RECIPES = sorted(glob.glob(osp.join(REPO, "configs", "torchreid", "recipes", "*.yaml")))


class CliTinySynthetic(SyntheticPerson):
    """16 ids (8 train), 3 cameras, 4 images each, 32x16."""

    @classmethod
    def from_config(cls, cfg):
        return dict(num_ids=16, num_cameras=3, images_per_id=4, height=32, width=16, seed=0)


# Registration is process-wide: this module's key is its own.
torchreid.data.register_image_dataset("cli_synthetic", CliTinySynthetic)


def _recipe(name):
    cfg = get_default_config()
    cfg.merge_from_file(osp.join(REPO, "configs", "torchreid", "recipes", name))
    return cfg


def test_every_recipe_loads():
    names = {osp.basename(p) for p in RECIPES}
    assert {"im_r50_softmax_256x128_amsgrad.yaml", "im_r50fc512_softmax_256x128_amsgrad.yaml",
            "im_osnet_x1_0_softmax_256x128_amsgrad_cosine.yaml", "im_osnet_x1_0_softmax_256x128_amsgrad.yaml",
            "im_osnet_ain_x1_0_softmax_256x128_amsgrad_cosine.yaml"} <= names
    for path in RECIPES:
        cfg = get_default_config()
        cfg.merge_from_file(path)
        assert cfg.train.optim == "amsgrad" and cfg.loss.name == "softmax" and cfg.data.height == 256
        # The name says the model, the schedule and (for the cosine ones) the scheduler.
        assert ("cosine" in path) == (cfg.train.lr_scheduler == "cosine")
        torchreid.optim.build_lr_scheduler(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1),
                                           **lr_scheduler_kwargs(cfg))


def test_recipe_values():
    cfg = _recipe("im_osnet_x1_0_softmax_256x128_amsgrad_cosine.yaml")
    assert (cfg.model.name, cfg.train.lr, cfg.train.max_epoch, cfg.train.batch_size) == ("osnet_x1_0", 0.0015, 250, 64)
    assert cfg.train.fixbase_epoch == 10 and cfg.test.batch_size == 300
    cfg = _recipe("im_r50_softmax_256x128_amsgrad.yaml")
    assert (cfg.model.name, cfg.train.lr, cfg.train.stepsize, cfg.train.fixbase_epoch) == ("resnet50", 0.0003, [20], 5)


@pytest.mark.parametrize("path", [p for p in RECIPES if "osnet" in p], ids=osp.basename)
def test_osnet_recipes_build_their_model_and_name_its_layers(path):
    cfg = get_default_config()
    cfg.merge_from_file(path)
    model = torchreid.models.build_model(cfg.model.name, 8, loss=cfg.loss.name, pretrained=False)
    assert model.name == cfg.model.name and model.heads.embedding_dim == 512
    assert set(cfg.train.open_layers) <= set(named_layers(model))


@pytest.mark.parametrize("name", ["im_r50_softmax_256x128_amsgrad.yaml", "im_r50fc512_softmax_256x128_amsgrad.yaml"])
def test_resnet_recipes_name_layers_of_their_model(name):
    cfg = _recipe(name)
    model = torchreid.models.build_model(cfg.model.name, 8, loss=cfg.loss.name, pretrained=False)
    assert set(cfg.train.open_layers) <= set(named_layers(model))
    assert set(cfg.train.new_layers) <= set(named_layers(model))


def test_torchreid_files_with_visactmap_load(tmp_path):
    # torchreid's own recipe files carry test.visactmap: they merge unchanged.
    path = tmp_path / "torchreid.yaml"
    path.write_text("model:\n  name: 'resnet50'\ntest:\n  eval_freq: 10\n  visactmap: False\n")
    cfg = get_default_config()
    cfg.merge_from_file(str(path))
    assert cfg.test.eval_freq == 10 and cfg.test.visactmap is False


@pytest.mark.parametrize("key, close", [("train.lrr", "train.lr"), ("test.evalute", "test.evaluate"),
                                        ("model.load_weight", "model.load_weights"),
                                        ("data.save_dirr", "data.save_dir")])
def test_misspelt_override_suggests_the_key(key, close):
    cfg = get_default_config()
    with pytest.raises(ConfigError, match=re.escape(f"did you mean '{close}'")):
        cfg.merge_from_list([key, "1"])


def test_misspelt_file_key_names_file_and_suggestion(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  max_epohc: 3\n")
    with pytest.raises(ConfigError, match=r"train\.max_epohc.*bad\.yaml.*did you mean 'train\.max_epoch'"):
        get_default_config().merge_from_file(str(path))


def test_overrides_parse_like_torchreid():
    cfg = get_default_config()
    cfg.merge_from_list(["test.evaluate", "True", "train.stepsize", "[10, 30]", "data.sources", "grid",
                         "data.targets", "['grid', 'viper']", "train.lr", "1e-3"])
    assert cfg.test.evaluate is True and cfg.train.stepsize == [10, 30] and cfg.train.lr == 0.001
    kwargs = imagedata_kwargs(cfg)
    assert kwargs["sources"] == ["grid"] and kwargs["targets"] == ["grid", "viper"]
    with pytest.raises(ConfigError, match="test.ranks"):
        cfg.merge_from_list(["test.ranks", "five"])


def test_every_argument_is_mapped():
    from fastreid.torchreid.engine import Engine

    def params(fn, *skip):
        return set(inspect.signature(fn).parameters) - {"self", *skip}

    cfg = get_default_config()
    # All of the data manager's arguments but its alias batch_size (for batch_size_train).
    assert set(imagedata_kwargs(cfg)) == params(torchreid.data.ImageDataManager, "batch_size")
    # fastreid's own video arguments (sample_method_train, frame_chunk) keep their defaults on the command line.
    assert set(videodata_kwargs(cfg)) == params(torchreid.data.VideoDataManager, "batch_size",
                                                "sample_method_train", "frame_chunk")
    assert set(optimizer_kwargs(cfg)) == params(torchreid.optim.build_optimizer, "model")
    assert set(lr_scheduler_kwargs(cfg)) == params(torchreid.optim.build_lr_scheduler, "optimizer")
    assert set(engine_run_kwargs(cfg)) == params(Engine.run)


def _file(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    cfg = get_default_config()
    cfg.merge_from_file(str(path))
    return cfg


def test_file_values_reach_the_data_manager(tmp_path):
    cfg = _file(tmp_path, f"""
data:
  root: '{tmp_path}'
  sources: ['cli_synthetic']
  targets: ['cli_synthetic']
  height: 32
  width: 16
  workers: 0
  transforms: ['random_flip', 'random_erase']
  norm_mean: [0.5, 0.5, 0.5]
sampler:
  train_sampler: 'RandomIdentitySampler'
  num_instances: 2
train:
  batch_size: 8
test:
  batch_size: 10
use_gpu: False
""")
    dm = torchreid.data.ImageDataManager(**imagedata_kwargs(cfg))
    assert dm.cfg.INPUT.REA.ENABLED and dm.cfg.INPUT.DO_FLIP and not dm.cfg.INPUT.DO_PAD
    assert dm.cfg.INPUT.SIZE_TRAIN == [32, 16] and dm.cfg.MODEL.PIXEL_MEAN == pytest.approx([127.5] * 3)
    assert dm.cfg.SOLVER.IMS_PER_BATCH == 8 and dm.cfg.TEST.IMS_PER_BATCH == 10
    assert dm.cfg.DATALOADER.NUM_INSTANCE == 2 and dm.cfg.DATALOADER.NUM_WORKERS == 0
    batch = next(iter(dm.train_loader))
    assert batch["img"].shape == (8, 3, 32, 16)
    counts = torch.bincount(batch["pid"])
    assert sorted(counts[counts > 0].tolist()) == [2, 2, 2, 2]


def test_file_values_reach_optimizer_and_scheduler(tmp_path):
    cfg = _file(tmp_path, """
train:
  optim: 'sgd'
  lr: 0.01
  weight_decay: 0.001
  lr_scheduler: 'multi_step'
  stepsize: [3, 6]
  gamma: 0.5
sgd:
  momentum: 0.8
  nesterov: True
""")
    model = nn.Linear(4, 2)
    optimizer = torchreid.optim.build_optimizer(model, **optimizer_kwargs(cfg))
    assert isinstance(optimizer, torch.optim.SGD)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["weight_decay"], group["momentum"], group["nesterov"]) == (0.01, 0.001, 0.8, True)
    scheduler = torchreid.optim.build_lr_scheduler(optimizer, **lr_scheduler_kwargs(cfg))
    assert isinstance(scheduler, torch.optim.lr_scheduler.MultiStepLR)
    assert sorted(scheduler.milestones) == [3, 6] and scheduler.gamma == 0.5

    cfg = _recipe("im_osnet_x1_0_softmax_256x128_amsgrad_cosine.yaml")
    optimizer = torchreid.optim.build_optimizer(model, **optimizer_kwargs(cfg))
    assert optimizer.param_groups[0]["amsgrad"] and optimizer.param_groups[0]["lr"] == 0.0015
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.999)
    scheduler = torchreid.optim.build_lr_scheduler(optimizer, **lr_scheduler_kwargs(cfg))
    assert isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR) and scheduler.T_max == 250


def test_file_values_reach_engine_run(tmp_path):
    cfg = _file(tmp_path, """
data:
  save_dir: 'out/run1'
train:
  max_epoch: 7
  fixbase_epoch: 2
  open_layers: ['fc', 'classifier']
  print_freq: 3
test:
  evaluate: True
  eval_freq: 2
  start_eval: 4
  dist_metric: 'cosine'
  ranks: [1, 3]
  visrank: True
  visrank_topk: 5
cuhk03:
  use_metric_cuhk03: True
""")
    assert engine_run_kwargs(cfg) == dict(
        save_dir="out/run1", max_epoch=7, start_epoch=0, fixbase_epoch=2, open_layers=["fc", "classifier"],
        start_eval=4, eval_freq=2, test_only=True, print_freq=3, dist_metric="cosine", normalize_feature=False,
        visrank=True, visrank_topk=5, use_metric_cuhk03=True, ranks=[1, 3], rerank=False)


# ----------------------------------------------------------------------------------------------------------
# the command line
# ----------------------------------------------------------------------------------------------------------
def _flags(tmp_path):
    """The README's flags, on the synthetic set."""
    return ["--root", str(tmp_path / "data"), "-s", "cli_synthetic", "-t", "cli_synthetic",
            "--transforms", "random_flip"]


def _opts(save_dir, model="resnet18"):
    """Overrides for a tiny CPU run: 32x16 images, small batches, no ImageNet weights."""
    return ["model.name", model, "model.pretrained", "False", "data.height", "32", "data.width", "16",
            "data.workers", "0", "train.batch_size", "8", "test.batch_size", "16", "train.print_freq", "1",
            "use_gpu", "False", "data.save_dir", str(save_dir)]


def _tiny_args(tmp_path, save_dir, *extra):
    return [*_flags(tmp_path), *_opts(save_dir), *extra]


def _results(log_file):
    """The (mAP, Rank-1) strings of the last test in a log file."""
    text = open(log_file).read()
    return re.findall(r"mAP: ([\d.]+)%", text)[-1], re.findall(r"Rank-1\s*: ([\d.]+)%", text)[-1]


def test_parser_takes_torchreid_flags_then_overrides():
    from fastreid.torchreid.cli import load_torchreid_config, parse_args

    def config(argv):
        args = parse_args(argv)
        return load_torchreid_config(args.config_file, args.sources, args.targets, args.transforms, args.root,
                                     args.opts)

    readme = ["--config-file", RECIPES[0], "-s", "grid", "viper", "-t", "prid", "--transforms", "random_flip",
              "random_erase", "--root", "/data", "model.load_weights", "w.pth", "test.evaluate", "True"]
    cfg = config(readme)
    assert cfg.data.sources == ("grid", "viper") and cfg.data.targets == ("prid",) and cfg.data.root == "/data"
    assert cfg.data.transforms == ("random_flip", "random_erase")
    assert cfg.model.load_weights == "w.pth" and cfg.test.evaluate is True
    assert engine_run_kwargs(cfg)["test_only"] is True
    # Overrides right after a list flag are overrides, not names (torchreid's parser would take them as names).
    cfg = config(["--root", "/data", "-t", "prid", "-s", "grid", "test.evaluate", "True", "train.lr", "0.1"])
    assert cfg.data.sources == ("grid",) and cfg.test.evaluate is True and cfg.train.lr == 0.1
    cfg = config(["--transforms", "data.save_dir", "out"])
    assert cfg.data.transforms == ("random_flip",) and cfg.data.save_dir == "out"


def test_command_line_rejects_a_misspelt_override(capsys):
    from fastreid.torchreid.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--config-file", RECIPES[0], "test.evalute", "True"])
    assert exc.value.code == 2
    assert "did you mean 'test.evaluate'" in capsys.readouterr().err


@pytest.mark.parametrize("opts, error, match", [
    (["data.type", "audio"], ValueError, "data.type 'audio'"),
    (["loss.name", "arcface"], ValueError, "loss.name 'arcface'"),
    (["loss.name", "triplet", "train.fixbase_epoch", "2"], ValueError, "weight_x"),
    (["test.visactmap", "True"], ValueError, "visualize_actmap"),
])
def test_command_line_rejects_what_it_cannot_run(tmp_path, opts, error, match):
    from fastreid.torchreid.cli import main

    with pytest.raises(error, match=match):
        main(["data.save_dir", str(tmp_path / "log"), *opts])


def test_command_line_runs_the_osnet_recipe(tmp_path):
    from fastreid.torchreid.cli import main

    recipe = osp.join(REPO, "configs", "torchreid", "recipes", "im_osnet_x1_0_softmax_256x128_amsgrad_cosine.yaml")
    opts = _opts(tmp_path / "log")[2:]  # the recipe's model.name
    engine = main(["--config-file", recipe, *_flags(tmp_path), *opts, "train.max_epoch", "1"])
    assert engine.model.name == "osnet_x1_0"
    assert (tmp_path / "log" / "model" / "model.pth.tar-1").is_file()


def test_command_line_trains_tests_and_retests_from_load_weights(tmp_path):
    from fastreid.torchreid.cli import main

    save_dir = tmp_path / "log"
    engine = main(_tiny_args(tmp_path, save_dir, "train.max_epoch", "2", "train.optim", "sgd", "train.lr", "0.01",
                             "train.lr_scheduler", "single_step", "train.stepsize", "[1]"))
    assert type(engine).__name__ == "ImageSoftmaxEngine"
    weights = save_dir / "model" / "model.pth.tar-2"
    assert weights.is_file()
    trained = _results(save_dir / "train.log")

    retest = main(_tiny_args(tmp_path, save_dir, "model.load_weights", str(weights), "test.evaluate", "True"))
    assert _results(save_dir / "test.log") == trained
    tested = retest.model.state_dict()
    assert all(torch.equal(value, tested[key]) for key, value in engine.model.state_dict().items())
    assert not (save_dir / "model" / "model.pth.tar-3").exists()


def test_command_line_builds_the_triplet_engine(tmp_path):
    from fastreid.torchreid import cli

    opts = [*_opts(tmp_path / "log"), "loss.name", "triplet", "loss.triplet.margin", "0.5",
            "loss.triplet.weight_x", "0.5", "sampler.train_sampler", "RandomIdentitySampler",
            "sampler.num_instances", "2"]
    cfg = cli.load_torchreid_config(root=str(tmp_path / "data"), sources=["cli_synthetic"],
                                    targets=["cli_synthetic"], opts=opts)
    dm = cli.build_datamanager(cfg)
    model = torchreid.models.build_model(cfg.model.name, dm.num_train_pids, loss="triplet", pretrained=False)
    optimizer = torchreid.optim.build_optimizer(model, **optimizer_kwargs(cfg))
    engine = cli.build_engine(cfg, dm, model, optimizer)
    assert type(engine).__name__ == "ImageTripletEngine"
    assert (engine.weight_t, engine.weight_x, engine.criterion_t.margin) == (1.0, 0.5, 0.5)


def test_module_and_tool_run_as_scripts(monkeypatch, capsys):
    import runpy
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "fastreid.torchreid.cli", "--help"], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--config-file" in out.stdout and "--sources" in out.stdout
    monkeypatch.setattr(sys, "argv", ["torchreid_main.py", "--help"])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(osp.join(REPO, "tools", "torchreid_main.py"), run_name="__main__")
    assert exc.value.code == 0 and "--transforms" in capsys.readouterr().out


def test_command_line_resumes_at_the_saved_epoch(tmp_path):
    from fastreid.torchreid.cli import main

    train = ("train.optim", "sgd", "train.lr", "0.01", "train.stepsize", "[1]")
    whole = main(_tiny_args(tmp_path, tmp_path / "whole", "train.max_epoch", "2", *train))
    main(_tiny_args(tmp_path, tmp_path / "parts", "train.max_epoch", "1", *train))
    first = tmp_path / "parts" / "model" / "model.pth.tar-1"
    resumed = main(_tiny_args(tmp_path, tmp_path / "parts", "train.max_epoch", "2", "model.resume", str(first),
                              *train))
    assert torch.load(tmp_path / "parts" / "model" / "model.pth.tar-2", weights_only=False)["epoch"] == 2
    assert resumed.scheduler.last_epoch == whole.scheduler.last_epoch == 2
    assert resumed.get_current_lr() == pytest.approx(whole.get_current_lr())
    # The second half continues the first (loader position and random state saved with epoch 1).
    expected = whole.model.state_dict()
    assert all(torch.allclose(value, expected[key]) for key, value in resumed.model.state_dict().items())


class CliTinyTracklets(SyntheticTracklets):
    """8 train ids, 3 cameras, 2 tracklets per camera of 4 frames, 32x16."""

    @classmethod
    def from_config(cls, cfg):
        return dict(num_ids=16, num_cameras=3, tracklets_per_camera=2, frames=4, height=32, width=16, seed=0)


torchreid.data.register_video_dataset("cli_tracklets", CliTinyTracklets)


@pytest.mark.parametrize("loss", ["softmax", "triplet"])
def test_command_line_trains_and_tests_video(tmp_path, loss):
    from fastreid.torchreid.cli import main

    flags = ["--root", str(tmp_path / "data"), "-s", "cli_tracklets", "-t", "cli_tracklets"]
    opts = [*_opts(tmp_path / "log"), "data.type", "video", "video.seq_len", "4", "video.pooling_method", "max",
            "train.batch_size", "4", "train.max_epoch", "1", "loss.name", loss]
    if loss == "triplet":
        opts += ["sampler.train_sampler", "RandomIdentitySampler", "sampler.num_instances", "2"]
    engine = main([*flags, *opts])
    expected = torchreid.engine.VideoSoftmaxEngine if loss == "softmax" else torchreid.engine.VideoTripletEngine
    assert isinstance(engine, expected) and engine.pooling_method == "max"
    assert isinstance(engine.datamanager, torchreid.data.VideoDataManager) and engine.datamanager.seq_len == 4
    assert (tmp_path / "log" / "model" / "model.pth.tar-1").is_file()
