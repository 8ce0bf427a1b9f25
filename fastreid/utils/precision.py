"""Numeric precision of training and inference: ``MODEL.PRECISION`` resolved to an autocast dtype.

``"auto"`` turns bfloat16 autocast on for a CPU only where it pays: the CPU reports native bf16 instructions
(``amx_bf16``, ``avx512_bf16``, Arm's ``bf16``) *and* a quick timed matmul (a few tens of ms, once per process)
finds bf16 at least :data:`MIN_BF16_SPEEDUP` times faster than float32. On CUDA it keeps float32 unless
SOLVER.FP16_ENABLED asks for mixed precision, then takes bfloat16 where the GPU supports it and float16 otherwise.
``"fp32"``, ``"bf16"`` and ``"fp16"`` force a precision. ``None`` stands for float32 (no autocast) throughout.

:func:`cpu_features` is public so that benchmarks can print the CPU model and flags next to their figures.
"""
import functools
import logging
import math
import platform
import time
from contextlib import nullcontext
from typing import Any, ContextManager, Dict, Optional, Set, Tuple, Union

import torch

from fastreid.utils import comm

__all__ = [
    "MIN_BF16_SPEEDUP",
    "PRECISIONS",
    "autocast_for",
    "bf16_matmul_speedup",
    "cpu_features",
    "precision_for",
    "precision_from_config",
    "precision_key",
    "precision_name",
    "resolve_precision",
    "share_bf16_check",
]

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES: Dict[str, Optional[torch.dtype]] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# Below this the matmul gain does not survive autocast's casts and the float32 layers (norms, losses).
MIN_BF16_SPEEDUP = 1.2
# Flags naming native bf16 arithmetic: x86 AMX and AVX512-BF16, Arm's BF16 extension. torch's fallback probe
# reports AMX by its tiles only; every AMX CPU so far has AMX-BF16.
_NATIVE_BF16_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16", "bf16")
_REPORTED_FLAGS = _NATIVE_BF16_FLAGS + ("amx_fp16", "avx512_fp16", "avx512f", "avx2", "fphp", "asimdhp")

Device = Union[torch.device, str]


def _read_proc_cpuinfo(path: str = "/proc/cpuinfo") -> Tuple[str, Set[str]]:
    """Model name and flags of the first processor in /proc/cpuinfo (Linux; x86 "flags", Arm "Features")."""
    model, flags = "", set()
    with open(path) as f:
        for line in f:
            if not line.strip():
                if model or flags:
                    break  # end of the first processor's block
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key in ("model name", "processor") and not model and not value.strip().isdigit():
                model = value.strip()
            elif key in ("flags", "features"):
                flags.update(value.split())
    return model, flags


def _torch_cpu_flags() -> Set[str]:
    """The flags torch's CPU probes can tell (private helpers, present in torch >= 2.1; missing ones are skipped)."""
    probes = {"avx512_bf16": "_is_avx512_bf16_supported", "amx_tile": "_is_amx_tile_supported",
              "amx_fp16": "_is_amx_fp16_supported", "avx512f": "_is_avx512_supported", "avx2": "_is_avx2_supported"}
    flags = set()
    for flag, name in probes.items():
        probe = getattr(torch.cpu, name, None)
        try:
            if probe is not None and probe():
                flags.add(flag)
        except RuntimeError:
            continue
    return flags


@functools.lru_cache(maxsize=None)
def _cpu_features() -> Tuple[str, Tuple[str, ...], str, str]:
    try:
        model, flags = _read_proc_cpuinfo()
        source = "/proc/cpuinfo"
    except OSError:
        model, flags = "", set()
    if not flags:  # no /proc/cpuinfo, or one without flags (some sandboxes)
        flags, source = _torch_cpu_flags(), "torch"
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "unknown")()
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    return model, tuple(f for f in _REPORTED_FLAGS if f in flags), source, str(capability)


def cpu_features() -> Dict[str, Any]:
    """The CPU model and its flags that matter for bf16 (cached; cheap to call).

    Returns:
        ``{"model": e.g. "AMD EPYC", "flags": the present ones among amx_bf16, amx_tile, amx_fp16,
        avx512_bf16, avx512_fp16, avx512f, avx2, bf16, fphp, asimdhp, "native_bf16": whether one of them is
        native bf16 arithmetic, "torch_capability": the SIMD level of torch's CPU kernels (e.g. "AVX512"),
        "source": "/proc/cpuinfo", or "torch" (its CPU probes) where that file is missing or lists no flags}``.
    """
    model, flags, source, capability = _cpu_features()
    return {"model": model, "flags": list(flags), "native_bf16": any(f in flags for f in _NATIVE_BF16_FLAGS),
            "torch_capability": capability, "source": source}


@functools.lru_cache(maxsize=None)
def bf16_matmul_speedup(size: int = 384, repeats: int = 8) -> float:
    """How many times faster a ``size``×``size`` bfloat16 matmul runs than a float32 one on this CPU.

    Best of ``repeats`` interleaved timings after two warm-ups (a few tens of ms at most), with the current
    torch thread count; cached per process. Uses its own random generator, so the global seed's stream is
    untouched.
    """
    generator = torch.Generator().manual_seed(0)
    a, b = torch.rand(size, size, generator=generator), torch.rand(size, size, generator=generator)
    a16, b16 = a.bfloat16(), b.bfloat16()
    best32 = best16 = math.inf
    with torch.no_grad(), torch.autocast("cpu", enabled=False):
        for i in range(repeats + 2):
            start = time.perf_counter()
            torch.mm(a, b)
            middle = time.perf_counter()
            torch.mm(a16, b16)
            end = time.perf_counter()
            if i >= 2:
                best32, best16 = min(best32, middle - start), min(best16, end - middle)
    return best32 / max(best16, 1e-9)


_shared_speedup: Optional[float] = None


def share_bf16_check(requested: str = "auto", device: Device = "cpu") -> None:
    """Make every process of a distributed run take the main process's bf16 speed check, so that "auto" picks
    one precision for all ranks (each rank's own timing may land on either side of the threshold).

    Call it on every rank with the run's MODEL.PRECISION and MODEL.DEVICE: it all-gathers once, and only where
    the check decides anything ("auto" on a CPU); a no-op in a single process. Only the main process times.
    """
    global _shared_speedup
    if _shared_speedup is not None or comm.get_world_size() == 1:
        return
    if str(requested).strip().lower() != "auto" or torch.device(device).type != "cpu":
        return
    timed = cpu_features()["native_bf16"] and comm.is_main_process()
    _shared_speedup = comm.all_gather(bf16_matmul_speedup() if timed else 0.0)[0]


def _cuda_bf16_supported() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def _resolve_auto_cpu(fp16_enabled: bool) -> Tuple[Optional[torch.dtype], str]:
    features = cpu_features()
    where = f"auto on CPU {features['model']}"
    not_forced = " (SOLVER.FP16_ENABLED does not force bf16 on a CPU where it is slower)" if fp16_enabled else ""
    native = [f for f in features["flags"] if f in _NATIVE_BF16_FLAGS]
    if _shared_speedup is not None:  # the main process's check, for every rank (share_bf16_check)
        speedup, where = _shared_speedup, f"{where} (the main process's check)"
        if not speedup:
            return None, f"{where}: float32, the main process's CPU has no native bf16 instructions{not_forced}"
    elif not native:
        return None, f"{where}: float32, the CPU has no native bf16 instructions{not_forced}"
    else:
        speedup = bf16_matmul_speedup()
    if speedup >= MIN_BF16_SPEEDUP:
        return torch.bfloat16, (f"{where}: bfloat16 autocast, the CPU has {'/'.join(native)} and a bf16 matmul ran "
                                f"{speedup:.2f}x as fast as float32")
    return None, (f"{where}: float32, the CPU has {'/'.join(native)} but a bf16 matmul ran only {speedup:.2f}x as "
                  f"fast as float32 (bf16 needs {MIN_BF16_SPEEDUP}x){not_forced}")


def _resolve_auto_cuda(fp16_enabled: bool) -> Tuple[Optional[torch.dtype], str]:
    if not fp16_enabled:
        return None, "auto on CUDA: float32 (SOLVER.FP16_ENABLED is off)"
    if _cuda_bf16_supported():
        return torch.bfloat16, "auto on CUDA with SOLVER.FP16_ENABLED: bfloat16 autocast (the GPU supports it)"
    return torch.float16, ("auto on CUDA with SOLVER.FP16_ENABLED: float16 autocast with a gradient scaler "
                           "(the GPU has no bfloat16)")


def resolve_precision(requested: str, device: Device,
                      fp16_enabled: bool = False) -> Tuple[Optional[torch.dtype], str]:
    """The autocast dtype for ``requested`` (a MODEL.PRECISION value) on ``device``, and why.

    Args:
        requested: "auto", "fp32", "bf16" or "fp16" (case-insensitive).
        device: where the model runs ("cpu", "cuda:0", a ``torch.device``...).
        fp16_enabled: SOLVER.FP16_ENABLED, the fast-reid switch for mixed precision; "auto" honours it on CUDA.

    Returns:
        ``(dtype, reason)``: ``torch.bfloat16``, ``torch.float16`` or None for float32 (no autocast), and a
        one-line explanation for the log.

    Raises:
        ValueError: for an unknown ``requested``, or "bf16" on a CUDA GPU without bfloat16.
    """
    key = str(requested).strip().lower()
    if key not in PRECISIONS:
        raise ValueError(f"MODEL.PRECISION must be one of {', '.join(PRECISIONS)}; got {requested!r}")
    device = torch.device(device)
    if key == "auto":
        if device.type == "cpu":
            return _resolve_auto_cpu(fp16_enabled)
        if device.type == "cuda":
            return _resolve_auto_cuda(fp16_enabled)
        return None, f"auto on {device.type}: float32 (set MODEL.PRECISION bf16 or fp16 for autocast there)"
    if key == "bf16" and device.type == "cuda" and not _cuda_bf16_supported():
        raise ValueError(f"MODEL.PRECISION bf16: the GPU of {device} does not support bfloat16; use fp16 or auto "
                         "(with SOLVER.FP16_ENABLED True) instead")
    reason = f"MODEL.PRECISION {key} on {device.type}"
    if key == "fp16" and device.type == "cpu":
        reason += " (float16 autocast is slow on most CPUs; bf16 or fp32 are usually faster)"
    return _DTYPES[key], reason


_logged: Set[Tuple[Optional[torch.dtype], str]] = set()


def precision_for(requested: str, device: Device, fp16_enabled: bool = False) -> Optional[torch.dtype]:
    """:func:`resolve_precision`, logging the choice and its reason once per process per distinct result."""
    dtype, reason = resolve_precision(requested, device, fp16_enabled)
    if (dtype, reason) not in _logged:
        _logged.add((dtype, reason))
        slow = dtype == torch.float16 and torch.device(device).type == "cpu"
        logger.log(logging.WARNING if slow else logging.INFO, "Precision: %s -> %s", reason, precision_name(dtype))
    return dtype


def precision_from_config(cfg) -> Optional[torch.dtype]:
    """The autocast dtype of ``cfg`` (MODEL.PRECISION on MODEL.DEVICE, with SOLVER.FP16_ENABLED), logged once.

    Returns:
        ``torch.bfloat16``, ``torch.float16``, or None for float32.
    """
    return precision_for(cfg.MODEL.PRECISION, cfg.MODEL.DEVICE, cfg.SOLVER.FP16_ENABLED)


def precision_name(dtype: Optional[torch.dtype]) -> str:
    """"float32" for None, else the dtype's name ("bfloat16", "float16")."""
    return "float32" if dtype is None else str(dtype).replace("torch.", "")


def precision_key(name: str) -> str:
    """The MODEL.PRECISION value of a :func:`precision_name` ("bfloat16" -> "bf16", "float32" -> "fp32").

    Raises:
        ValueError: ``name`` is not a name :func:`precision_name` gives.
    """
    keys = {precision_name(dtype): key for key, dtype in _DTYPES.items()}
    if name not in keys:
        raise ValueError(f"Unknown precision name {name!r}; expected one of {', '.join(keys)}")
    return keys[name]


def autocast_for(dtype: Optional[torch.dtype], device: Device) -> ContextManager:
    """``torch.autocast`` to ``dtype`` on ``device``'s type, or a no-op context for None (float32)."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)
