"""Helpers shared by the benchmark scripts: matmul peak, machine description, interleaved timing, re-id-like
synthetic features."""
import os
import platform
import statistics
import time
from typing import Callable, Dict, List, Mapping, Tuple

import numpy as np
import torch


def matmul_peak(dtype: torch.dtype, size: int = 4096, reps: int = 5) -> float:
    """Best FLOP/s of a ``size``-square matmul in ``dtype``."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def _cpu_features_fallback() -> Dict[str, str]:
    info: Dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    flags = info.get("flags", "").split()
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
    return {"model": info.get("model name", platform.processor() or "unknown"),
            "flags": " ".join(f for f in wanted if f in flags) or "none of " + ",".join(wanted)}


def machine_summary() -> str:
    """One line naming the CPU, its matmul-relevant flags, torch threads and the load average."""
    try:
        from fastreid.utils.precision import cpu_features  # written by another change; may be absent
        features = cpu_features()
    except (ImportError, AttributeError):
        features = _cpu_features_fallback()
    if isinstance(features, Mapping):
        described = ", ".join(f"{k}: {v}" for k, v in features.items())
    else:
        described = str(features)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"CPU {described}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"{os.cpu_count()} logical CPUs; load average {load}")


def interleaved_medians(
    variants: Mapping[str, Callable[[], None]], *, iters: int, rounds: int, warmup: int = 2,
) -> Dict[str, List[float]]:
    """Times each variant for ``iters`` calls per round, variants taking turns in every round.

    Interleaving spreads drifts of the machine (other load, frequency) over all variants alike.

    Returns:
        ``{name: [median seconds per call in round r for r in range(rounds)]}``.
    """
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    per_round: Dict[str, List[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            times = []
            for _ in range(iters):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            per_round[name].append(statistics.median(times))
    return per_round


def median_ratio(per_round: Mapping[str, List[float]], name: str, reference: str) -> float:
    """Median over rounds of ``time(name) / time(reference)`` measured in the same round."""
    return statistics.median(a / b for a, b in zip(per_round[name], per_round[reference]))


def clustered_features(n: int, centres: torch.Tensor, cams: torch.Tensor, generator: torch.Generator,
                       noise_scale: float = 1.0) -> Tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """``n`` re-id-like features: identity centre + 0.6 x camera offset + noise of std 1.2 to 3, L2-normalised.

    Args:
        centres: (num_ids, D) identity centres.
        cams: (num_cams, D) camera offsets.
        generator: the random stream (drawn from in a fixed order, so a seed gives the same features).
        noise_scale: multiplies the noise std (below 1: tighter identity clusters).

    Returns:
        (n, D) float32 features, (n,) identity and (n,) camera labels.
    """
    pids = torch.randint(0, len(centres), (n,), generator=generator)
    camids = torch.randint(0, len(cams), (n,), generator=generator)
    sigma = noise_scale * (1.2 + 1.8 * torch.rand(n, 1, generator=generator))
    feats = centres[pids] + 0.6 * cams[camids] + sigma * torch.randn(n, centres.shape[1], generator=generator)
    return torch.nn.functional.normalize(feats, dim=1), pids.numpy(), camids.numpy()
