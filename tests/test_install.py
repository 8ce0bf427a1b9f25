"""The package build: the Cython ranking extension is compiled, and importing fastreid has no side effects."""
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(importlib.util.find_spec("fastreid").origin).parent

# Run in a fresh interpreter: imports every fastreid module and reports what changed. Sockets are replaced
# first, so any network use (a download) is recorded instead of made.
_CHILD = r"""
import json, logging, os, random, socket, sys

network = []
def _no_network(*args, **kwargs):
    network.append(repr(args[1:3] if args and isinstance(args[0], socket.socket) else args[:2]))
    raise OSError("network use during import")
socket.socket.connect = socket.socket.connect_ex = _no_network
socket.create_connection = socket.getaddrinfo = _no_network

import numpy as np
import torch


def state():
    return {
        "sys.path": list(sys.path),
        "cwd": os.getcwd(),
        "torch threads": [torch.get_num_threads(), torch.get_num_interop_threads()],
        "torch default dtype": str(torch.get_default_dtype()),
        "torch rng": torch.get_rng_state().tolist(),
        "random rng": repr(random.getstate()),
        "numpy rng": repr(np.random.get_state()),
        "root log handlers": [repr(h) for h in logging.getLogger().handlers],
        "fastreid log handlers": [repr(h) for h in logging.getLogger("fastreid").handlers],
    }

report_path, modules = sys.argv[1], sys.argv[2:]
before = state()
for name in modules:
    __import__(name)
after = state()
with open(report_path, "w") as f:
    json.dump({"changed": {k: [before[k], after[k]] for k in before if before[k] != after[k]},
               "network": network}, f)
"""


def _module_names():
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _files(folder: Path):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if "__pycache__" not in p.parts)


def test_compiled_ranking_extension_imports():
    module = importlib.import_module("fastreid.evaluation.rank_cylib.rank_cy")
    assert module.__file__.endswith((".so", ".pyd")), f"{module.__file__} is not a compiled extension"


@pytest.mark.slow
def test_subpackages_import_without_side_effects(tmp_path):
    """Importing every fastreid module prints nothing and leaves files, network, paths, threads and RNGs alone."""
    cwd, home, report = tmp_path / "cwd", tmp_path / "home", tmp_path / "report.json"
    cwd.mkdir()
    home.mkdir()
    modules = _module_names()
    assert "fastreid.engine" in modules and "fastreid.evaluation.rank_cylib.rank_cy" not in modules
    package_files = _files(PACKAGE)
    # Caches and the datasets root point into an empty folder, so a download or generated file shows up there.
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"), "TORCH_HOME": str(home / "torch"),
           "FASTREID_DATASETS": str(home / "datasets")}
    done = subprocess.run([sys.executable, "-c", _CHILD, str(report), *modules], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")
    result = json.loads(report.read_text())
    assert result["network"] == []
    assert result["changed"] == {}
    assert _files(cwd) == [] and _files(home) == []
    assert _files(PACKAGE) == package_files
