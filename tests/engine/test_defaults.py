import pytest
import torch

from fastreid.config import get_cfg
from fastreid.engine.defaults import default_argument_parser, default_setup, setup_cfg


def _args(*argv):
    return default_argument_parser().parse_args(list(argv))


def test_parser_reads_flags_and_trailing_overrides(tmp_path):
    args = _args(
        "--config-file", "a.yml", "--resume", "--num-gpus", "2", "--num-machines", "3", "--machine-rank", "1",
        "--dist-url", "tcp://127.0.0.1:1234", "SOLVER.BASE_LR", "0.1", "MODEL.DEVICE", "cpu",
    )
    assert args.config_file == "a.yml" and args.resume and not args.eval_only
    assert (args.num_gpus, args.num_machines, args.machine_rank) == (2, 3, 1)
    assert args.dist_url == "tcp://127.0.0.1:1234"
    assert args.opts == ["SOLVER.BASE_LR", "0.1", "MODEL.DEVICE", "cpu"]
    assert _args("--eval-only").eval_only


def test_setup_cfg_merges_file_then_overrides(tmp_path):
    path = tmp_path / "cfg.yml"
    path.write_text("SOLVER:\n  BASE_LR: 0.5\n  MAX_EPOCH: 3\n")
    cfg = setup_cfg(_args("--config-file", str(path), "SOLVER.MAX_EPOCH", "4"))
    assert cfg.SOLVER.BASE_LR == 0.5 and cfg.SOLVER.MAX_EPOCH == 4
    assert cfg.is_frozen()


def test_default_setup_writes_a_config_that_reloads_equal(tmp_path):
    cfg = setup_cfg(_args("OUTPUT_DIR", str(tmp_path / "run"), "SEED", "3", "MODEL.DEVICE", "cpu"))
    default_setup(cfg, _args())
    saved = tmp_path / "run" / "config.yaml"
    assert saved.is_file() and (tmp_path / "run" / "log.txt").is_file()
    reloaded = get_cfg()
    reloaded.merge_from_file(str(saved))
    assert reloaded == cfg
    first = torch.rand(3)
    default_setup(cfg, _args())
    assert torch.equal(torch.rand(3), first)  # SEED makes the RNG state reproducible


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_default_setup_rejects_cuda_without_a_gpu(tmp_path):
    cfg = setup_cfg(_args("OUTPUT_DIR", str(tmp_path), "MODEL.DEVICE", "cuda"))
    with pytest.raises(ValueError, match="MODEL.DEVICE cpu"):
        default_setup(cfg, _args())


def test_deterministic_mode_switches_torch_to_deterministic_algorithms(tmp_path):
    cfg = setup_cfg(_args("OUTPUT_DIR", str(tmp_path), "MODEL.DEVICE", "cpu", "DETERMINISTIC", "True"))
    try:
        default_setup(cfg, _args())
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
