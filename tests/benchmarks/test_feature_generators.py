"""The benchmarks' feature generators do what their documentation says (the benchmarks are scripts, not tests)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from _common import SPECTRUM_EXPONENT, spectral_features, spectral_world  # noqa: E402
from feature_structure import structure  # noqa: E402


def test_spectral_features_follow_their_power_law():
    g = torch.Generator().manual_seed(0)
    feats, pids, camids = spectral_features(4000, spectral_world(400, 6, 128, g), g)
    assert feats.shape == (4000, 128) and feats.dtype == torch.float32
    np.testing.assert_allclose(feats.norm(dim=1).numpy(), 1.0, atol=1e-5)
    stats = structure(feats.numpy(), pids, camids, between_fit=30, within_fit=100)
    # Normalisation bends the spectra a little; both stay near the fitted exponent, far from isotropic noise (~0).
    assert abs(stats["exponent_within"] - SPECTRUM_EXPONENT) < 0.3
    assert abs(stats["exponent_between"] - SPECTRUM_EXPONENT) < 0.4
    assert stats["between_share"] > 0.6 and stats["cos_same"] > 0.6


def test_spectral_features_are_deterministic_in_the_seed():
    def draw(seed):
        g = torch.Generator().manual_seed(seed)
        return spectral_features(50, spectral_world(10, 3, 32, g), g)[0]

    assert torch.equal(draw(1), draw(1)) and not torch.equal(draw(1), draw(2))


@pytest.mark.slow
def test_bench_index_runs_and_finds_the_exact_neighbours(tmp_path):
    out = tmp_path / "rows.json"
    proc = subprocess.run([sys.executable, "bench_index.py", "--n", "4000", "--queries", "50", "--dim", "64",
                           "--kinds", "flat,hnsw", "--json", str(out)], cwd=BENCHMARKS, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "| flat | exact |" in proc.stdout and "Market-1501 shape" in proc.stdout
    rows = json.loads(out.read_text())
    assert rows[0]["variant"] == "flat" and rows[0]["recall@10"] == 1.0
    hnsw = [r for r in rows if r["variant"] == "hnsw"]
    assert len(hnsw) == 6 and max(r["recall@10"] for r in hnsw) > 0.9
