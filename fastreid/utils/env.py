"""Process environment: RNG seeding, device resolution and an environment report."""

import importlib
import logging
import os
import platform
import random
import sys
import time
import warnings
from collections import defaultdict
from types import ModuleType
from typing import List, Optional, Tuple

import numpy as np
import torch
from tabulate import tabulate

__all__ = ["collect_env_info", "resolve_device", "seed_all_rng", "set_torch_threads"]

logger = logging.getLogger(__name__)


def seed_all_rng(seed: Optional[int] = None) -> int:
    """Seeds the python, numpy and torch random number generators.

    Args:
        seed: the seed, in [0, 2**32). None draws one from ``os.urandom``, the
            process id and the current time, and logs it.

    Returns:
        int: the seed actually used.
    """
    if seed is None:
        entropy = int.from_bytes(os.urandom(4), "big") + os.getpid() + time.time_ns()
        seed = entropy % 2**31
        logger.info("Using a generated random seed %d", seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return seed


def import_fvcore_nn() -> ModuleType:
    """``fvcore.nn``, imported on first use and without the FutureWarning its import-time ``torch.jit.script``
    gives on recent torch (so that importing fastreid prints nothing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import fvcore.nn
    return fvcore.nn


def set_torch_threads(num: Optional[int]) -> int:
    """Sets the number of intra-op torch threads.

    Args:
        num: thread count; None keeps the current setting.

    Returns:
        int: the number of threads torch now uses.
    """
    if num is not None:
        if num < 1:
            raise ValueError(f"Number of threads must be >= 1, got {num}.")
        torch.set_num_threads(num)
    return torch.get_num_threads()


def resolve_device(name: str) -> torch.device:
    """Turns a device name from the config (``MODEL.DEVICE``) into a usable device.

    Args:
        name: e.g. "cpu", "cuda", "cuda:1", "mps".

    Returns:
        torch.device: the device.

    Raises:
        ValueError: if the name is invalid or the device is not available here.
    """
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"The config asks for device '{name}', which is not a valid torch device.") from e
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"The config asks for device '{name}' but no CUDA device is available; "
                "rerun with `MODEL.DEVICE cpu`."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"The config asks for device '{name}' but only {torch.cuda.device_count()} "
                "CUDA device(s) are available."
            )
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(
                f"The config asks for device '{name}' but no MPS device is available; "
                "rerun with `MODEL.DEVICE cpu`."
            )
    return device


def _package_version(*dist_names: str) -> str:
    """Returns the installed version of the first distribution found, without importing it."""
    from importlib import metadata

    for dist_name in dist_names:
        try:
            return metadata.version(dist_name)
        except metadata.PackageNotFoundError:
            continue
    return "not found"


def _fastreid_info() -> List[Tuple[str, str]]:
    # Probed at call time only: utils must not import the rest of fastreid.
    try:
        fastreid = importlib.import_module("fastreid")
        rows = [("fastreid", f"{fastreid.__version__} @{os.path.dirname(fastreid.__file__)}")]
    except Exception as e:  # noqa: BLE001 - a broken install is what we want to report
        return [("fastreid", f"failed to import: {e}")]
    try:
        importlib.import_module("fastreid.evaluation.rank_cylib.rank_cy")
        compiled = "yes"
    except Exception:  # noqa: BLE001
        compiled = "no (Python ranker will be used)"
    rows.append(("fastreid compiled ranker", compiled))
    return rows


def _cpu_info() -> Tuple[str, str]:
    """Returns (CPU model, feature flags line) read from /proc/cpuinfo when present."""
    model, flags = platform.processor() or "unknown", ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("unknown", "x86_64", ""):
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = value
    except OSError:
        pass
    return model, flags


def _bf16_cpu_support(flags: str) -> str:
    if not flags:
        return "unknown"
    found = [f for f in ("avx512_bf16", "amx_bf16") if f in flags.split()]
    return f"yes ({', '.join(found)})" if found else "no (emulated)"


def _cpu_capability() -> str:
    backend = getattr(torch.backends, "cpu", None)
    return backend.get_cpu_capability() if hasattr(backend, "get_cpu_capability") else "unknown"


def _gpu_rows() -> List[Tuple[str, str]]:
    if not torch.cuda.is_available():
        return []
    devices = defaultdict(list)
    for k in range(torch.cuda.device_count()):
        cap = ".".join(str(x) for x in torch.cuda.get_device_capability(k))
        devices[f"{torch.cuda.get_device_name(k)} (arch={cap})"].append(str(k))
    rows = [("GPU " + ",".join(ids), name) for name, ids in devices.items()]
    rows.append(("CUDA (torch build)", str(torch.version.cuda)))
    rows.append(("cuDNN", str(torch.backends.cudnn.version())))
    return rows


def collect_env_info() -> str:
    """Returns a table describing the platform, libraries and hardware.

    Never raises on a missing optional component; it reports it instead.
    """
    rows: List[Tuple[str, str]] = [
        ("sys.platform", sys.platform),
        ("Python", sys.version.replace("\n", "")),
        ("numpy", np.__version__),
    ]
    rows += _fastreid_info()
    rows += [
        ("PyTorch", f"{torch.__version__} @{os.path.dirname(torch.__file__)}"),
        ("PyTorch debug build", str(torch.version.debug)),
        ("CUDA available", str(torch.cuda.is_available())),
    ]
    rows += _gpu_rows()
    rows += [
        ("torchvision", _package_version("torchvision")),
        ("fvcore", _package_version("fvcore")),
        ("iopath", _package_version("iopath")),
        ("faiss", _package_version("faiss-cpu", "faiss-gpu", "faiss")),
        ("tensorboard", _package_version("tensorboard")),
        ("Pillow", _package_version("Pillow", "pillow")),
    ]
    model, flags = _cpu_info()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    rows += [
        ("CPU", model),
        ("CPU cores (usable / total)", f"{usable} / {os.cpu_count()}"),
        ("torch threads", str(torch.get_num_threads())),
        ("MKL available", str(torch.backends.mkl.is_available())),
        ("oneDNN available", str(torch.backends.mkldnn.is_available())),
        ("CPU capability", _cpu_capability()),
        ("bf16 CPU support", _bf16_cpu_support(flags)),
    ]
    return tabulate(rows)
