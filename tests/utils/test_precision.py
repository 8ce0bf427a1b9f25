"""MODEL.PRECISION resolution (fastreid.utils.precision): every rule, with the CPU flags and timing patched."""
import logging

import pytest
import torch

from fastreid.config import get_cfg
from fastreid.utils import precision

X86_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: Test EPYC 9999
flags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile amx_bf16 other

processor\t: 1
model name\t: Second CPU
flags\t\t: fpu sse avx2 avx512_fp16
"""

ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 2100.00
Features\t: fp asimd asimdhp bf16 i8mm
CPU part\t: 0xd40
"""


@pytest.fixture
def cpu(monkeypatch):
    """Patches the CPU the auto rule sees: ``cpu(flags, speedup)``; the speedup check fails if called unasked."""
    def patch(flags, speedup=None):
        native = any(f in ("amx_bf16", "amx_tile", "avx512_bf16", "bf16") for f in flags)
        monkeypatch.setattr(precision, "cpu_features", lambda: {
            "model": "Test CPU", "flags": list(flags), "native_bf16": native, "torch_capability": "AVX512",
            "source": "test"})

        def timed():
            if speedup is None:
                raise AssertionError("the bf16 timing ran although the flags rule it out")
            return speedup
        monkeypatch.setattr(precision, "bf16_matmul_speedup", timed)
    return patch


@pytest.fixture
def cuda_bf16(monkeypatch):
    def patch(supported):
        monkeypatch.setattr(precision, "_cuda_bf16_supported", lambda: supported)
    return patch


@pytest.mark.parametrize("bad", ["float32", "", "bf-16", None, 16])
def test_unknown_precision_names_the_key_and_the_choices(bad):
    with pytest.raises(ValueError, match=r"MODEL\.PRECISION must be one of auto, fp32, bf16, fp16"):
        precision.resolve_precision(bad, "cpu")


@pytest.mark.parametrize("name,dtype", [("fp32", None), ("bf16", torch.bfloat16), ("FP16", torch.float16),
                                        (" Bf16 ", torch.bfloat16)])
def test_explicit_precision_wins_on_cpu_without_timing(cpu, name, dtype):
    cpu([], speedup=None)  # no native bf16 and the check must not run: the explicit choice wins
    assert precision.resolve_precision(name, "cpu", fp16_enabled=True)[0] == dtype


def test_fp16_on_cpu_is_allowed_and_called_slow(caplog, monkeypatch):
    monkeypatch.setattr(precision, "_logged", set())
    dtype, reason = precision.resolve_precision("fp16", torch.device("cpu"))
    assert dtype == torch.float16 and "slow" in reason
    with caplog.at_level(logging.INFO, logger="fastreid.utils.precision"):
        precision.precision_for("fp16", "cpu")
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


def test_bf16_on_a_cuda_gpu_without_bf16_is_an_error(cuda_bf16):
    cuda_bf16(False)
    with pytest.raises(ValueError, match="MODEL.PRECISION bf16.*does not support bfloat16.*fp16"):
        precision.resolve_precision("bf16", "cuda:0")
    cuda_bf16(True)
    assert precision.resolve_precision("bf16", "cuda:0")[0] == torch.bfloat16
    assert precision.resolve_precision("fp16", "cuda")[0] == torch.float16


@pytest.mark.parametrize("flags", [[], ["avx512f", "avx2"], ["amx_fp16", "avx512_fp16"]])
@pytest.mark.parametrize("fp16_enabled", [False, True])
def test_auto_on_a_cpu_without_native_bf16_is_fp32(cpu, flags, fp16_enabled):
    cpu(flags, speedup=None)
    dtype, reason = precision.resolve_precision("auto", "cpu", fp16_enabled)
    assert dtype is None and "no native bf16" in reason
    assert ("SOLVER.FP16_ENABLED does not force" in reason) == fp16_enabled


@pytest.mark.parametrize("flags", [["avx512_bf16"], ["amx_bf16", "amx_tile"], ["amx_tile"], ["bf16"]])
def test_auto_on_a_cpu_with_native_bf16_follows_the_timing(cpu, flags):
    cpu(flags, speedup=2.5)
    dtype, reason = precision.resolve_precision("auto", "cpu")
    assert dtype == torch.bfloat16 and "2.50x" in reason and flags[0] in reason
    cpu(flags, speedup=0.5)
    dtype, reason = precision.resolve_precision("auto", "cpu", fp16_enabled=True)
    assert dtype is None and "0.50x" in reason and "SOLVER.FP16_ENABLED does not force" in reason


def test_auto_cpu_threshold_is_the_minimum_speedup(cpu):
    cpu(["avx512_bf16"], speedup=precision.MIN_BF16_SPEEDUP)
    assert precision.resolve_precision("auto", "cpu")[0] == torch.bfloat16
    cpu(["avx512_bf16"], speedup=precision.MIN_BF16_SPEEDUP * 0.99)
    assert precision.resolve_precision("auto", "cpu")[0] is None


@pytest.mark.parametrize("fp16_enabled,bf16_ok,expected", [
    (False, True, None), (False, False, None), (True, True, torch.bfloat16), (True, False, torch.float16)])
def test_auto_on_cuda(cuda_bf16, fp16_enabled, bf16_ok, expected):
    cuda_bf16(bf16_ok)
    assert precision.resolve_precision("auto", "cuda", fp16_enabled)[0] == expected


def test_auto_on_other_devices_is_fp32_unless_explicit(cpu):
    cpu(["amx_bf16"], speedup=9.0)  # the CPU's abilities do not leak into another device's choice
    assert precision.resolve_precision("auto", "mps", fp16_enabled=True)[0] is None
    assert precision.resolve_precision("bf16", "mps")[0] == torch.bfloat16


def test_precision_from_config_reads_the_three_keys(monkeypatch):
    seen = []
    monkeypatch.setattr(precision, "resolve_precision", lambda *args: seen.append(args) or (torch.float16, "why"))
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.PRECISION", "bf16", "MODEL.DEVICE", "cpu", "SOLVER.FP16_ENABLED", True])
    assert precision.precision_from_config(cfg) == torch.float16
    assert seen == [("bf16", "cpu", True)]


def test_the_choice_is_logged_once_per_distinct_result(cpu, caplog, monkeypatch):
    monkeypatch.setattr(precision, "_logged", set())
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.PRECISION", "auto"])
    with caplog.at_level(logging.INFO, logger="fastreid.utils.precision"):
        cpu(["avx512_bf16"], speedup=3.0)
        for _ in range(3):
            assert precision.precision_from_config(cfg) == torch.bfloat16
        cfg.MODEL.PRECISION = "fp32"
        for _ in range(2):
            assert precision.precision_from_config(cfg) is None
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "bfloat16 autocast" in messages[0] and messages[0].endswith("-> bfloat16")
    assert "MODEL.PRECISION fp32" in messages[1] and messages[1].endswith("-> float32")


def test_proc_cpuinfo_parsing_reads_the_first_processor(tmp_path):
    x86, arm = tmp_path / "x86", tmp_path / "arm"
    x86.write_text(X86_CPUINFO)
    arm.write_text(ARM_CPUINFO)
    model, flags = precision._read_proc_cpuinfo(str(x86))
    assert model == "Test EPYC 9999"
    assert {"avx512_bf16", "amx_bf16", "amx_tile", "avx512f"} <= flags and "avx512_fp16" not in flags
    model, flags = precision._read_proc_cpuinfo(str(arm))
    assert model == "" and {"bf16", "asimdhp"} <= flags


def test_cpu_features_match_proc_cpuinfo_or_fall_back_to_torch(monkeypatch):
    precision._cpu_features.cache_clear()
    try:
        features = precision.cpu_features()
        assert set(features) == {"model", "flags", "native_bf16", "torch_capability", "source"}
        assert features["model"] and set(features["flags"]) <= set(precision._REPORTED_FLAGS)
        if features["source"] == "/proc/cpuinfo":
            with open("/proc/cpuinfo") as f:
                first = f.read().split("\n\n")[0].split()
            assert features["flags"] == [f for f in precision._REPORTED_FLAGS if f in first]
        precision._cpu_features.cache_clear()

        def missing(path="/proc/cpuinfo"):
            raise FileNotFoundError(path)
        monkeypatch.setattr(precision, "_read_proc_cpuinfo", missing)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
        fallback = precision.cpu_features()
        assert fallback["source"] == "torch" and "avx512_bf16" in fallback["flags"] and fallback["native_bf16"]
        precision._cpu_features.cache_clear()
        monkeypatch.setattr(precision, "_read_proc_cpuinfo", lambda: ("Sandboxed CPU", set()))
        sandboxed = precision.cpu_features()
        assert sandboxed["model"] == "Sandboxed CPU" and sandboxed["source"] == "torch"
        assert "avx512_bf16" in sandboxed["flags"]
    finally:
        precision._cpu_features.cache_clear()


def test_bf16_matmul_speedup_is_cached_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    speedup = precision.bf16_matmul_speedup(64, 2)
    assert torch.equal(torch.get_rng_state(), state)
    assert 0 < speedup < float("inf")
    hits = precision.bf16_matmul_speedup.cache_info().hits
    assert precision.bf16_matmul_speedup(64, 2) == speedup
    assert precision.bf16_matmul_speedup.cache_info().hits == hits + 1


def test_autocast_for():
    a = torch.rand(4, 4)
    with precision.autocast_for(None, "cpu"):
        assert (a @ a).dtype == torch.float32
    with precision.autocast_for(torch.bfloat16, torch.device("cpu")):
        assert (a @ a).dtype == torch.bfloat16
    assert precision.precision_name(None) == "float32" and precision.precision_name(torch.float16) == "float16"


@pytest.mark.parametrize("main_speedup, own_flags, expected", [
    (2.0, [], torch.bfloat16),                 # the main process's fast bf16 wins over this rank's missing flags
    (0.5, ["avx512_bf16"], None),              # ... and its slow check over this rank's fast one
    (0.0, ["avx512_bf16"], None),              # the main process has no native bf16
])
def test_every_rank_takes_the_main_process_check(cpu, monkeypatch, main_speedup, own_flags, expected):
    cpu(own_flags, speedup=3.0 if own_flags else None)
    monkeypatch.setattr(precision, "_shared_speedup", None)
    monkeypatch.setattr(precision.comm, "get_world_size", lambda: 2)
    gathered = []
    monkeypatch.setattr(precision.comm, "all_gather", lambda value: gathered.append(value) or [main_speedup, value])
    precision.share_bf16_check()
    precision.share_bf16_check()  # gathers once
    assert len(gathered) == 1
    dtype, reason = precision.resolve_precision("auto", "cpu")
    assert dtype == expected and "main process" in reason


def test_sharing_the_check_is_a_no_op_in_one_process(monkeypatch):
    monkeypatch.setattr(precision, "_shared_speedup", None)
    monkeypatch.setattr(precision.comm, "all_gather", lambda value: pytest.fail("gathered in a single process"))
    precision.share_bf16_check()
    assert precision._shared_speedup is None


def test_precision_key_inverts_precision_name():
    for key in ("fp32", "bf16", "fp16"):
        dtype, _ = precision.resolve_precision(key, "cpu")
        assert precision.precision_key(precision.precision_name(dtype)) == key
    with pytest.raises(ValueError, match="Unknown precision name 'fp64'"):
        precision.precision_key("fp64")


@pytest.mark.parametrize("requested, device", [("fp32", "cpu"), ("bf16", "cpu"), ("auto", "cuda")])
def test_sharing_the_check_is_skipped_where_it_decides_nothing(monkeypatch, requested, device):
    monkeypatch.setattr(precision, "_shared_speedup", None)
    monkeypatch.setattr(precision.comm, "get_world_size", lambda: 2)
    monkeypatch.setattr(precision.comm, "all_gather", lambda value: pytest.fail("gathered for nothing"))
    precision.share_bf16_check(requested, device)
    assert precision._shared_speedup is None
