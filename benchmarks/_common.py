"""Helpers shared by the benchmark scripts: matmul peak, machine description, memory figures, spawned child
processes, feature stores, interleaved timing, re-id-like synthetic features."""
import multiprocessing as mp
import os
import resource
import statistics
import threading
import time
from pathlib import Path
from queue import Empty
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

import numpy as np
import torch

from fastreid.utils.precision import cpu_features


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


def machine_summary() -> str:
    """One line naming the CPU, its matmul-relevant flags, torch threads and the load average."""
    described = ", ".join(f"{k}: {v}" for k, v in cpu_features().items())
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"CPU {described}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"{os.cpu_count()} logical CPUs; load average {load}")


def peak_rss_gib() -> float:
    """Peak resident set size of this process so far (``ru_maxrss``, KiB on Linux), in GiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def rss_gib() -> float:
    """Current resident set size of this process (``/proc/self/statm``), in GiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**30


def rss_anon_gib() -> float:
    """Current anonymous resident memory (``RssAnon`` of ``/proc/self/status``) in GiB: the process' own
    allocations, without page cache and file-backed mappings; NaN where the field is missing."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def reset_peak_rss() -> bool:
    """Lowers the peak RSS to the current RSS (Linux), so a stage's peak excludes its set-up; returns success."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class PeakSampler:
    """Largest :func:`rss_anon_gib` seen by a background thread (every 50 ms) while the ``with`` block runs."""

    def __enter__(self) -> "PeakSampler":
        self.peak, self._stop = rss_anon_gib(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_anon_gib())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_anon_gib())


def run_spawned(target: Callable[..., None], *args: Any, poll_seconds: float = 1.0) -> Any:
    """Runs ``target(*args, queue)`` in a fresh spawned process and returns what it put on ``queue``.

    Raises:
        RuntimeError: the child exited without putting a result (e.g. killed for lack of memory).
    """
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    while True:  # get before join: a child with a large result waits for it to be read before exiting
        alive = proc.is_alive()  # checked before the get, so a result put just before exiting is still read
        try:
            result = queue.get(timeout=poll_seconds)
            break
        except Empty:
            if not alive:
                proc.join()
                raise RuntimeError(f"{getattr(target, '__name__', target)} exited with code {proc.exitcode} "
                                   "without a result") from None
    proc.join()
    return result


def write_feature_store(folder: str, feats: Any, pids: np.ndarray, camids: np.ndarray, num_shards: int,
                        batch: int, meta: Optional[Dict[str, Any]] = None, fingerprint: str = "benchmark",
                        path_format: str = "{}") -> None:
    """Writes (N, D) ``feats`` (array or CPU tensor) and their labels as a finished feature store.

    Shards follow ``ShardPlan.aligned(N, num_shards, batch)`` and are written ``batch`` rows at a time; row ``i``
    gets the path ``path_format.format(i)``.
    """
    from fastreid.evaluation.feature_store import ShardPlan, finalize_store, write_shard

    feats = np.asarray(feats)
    plan = ShardPlan.aligned(len(feats), num_shards, batch)
    for index in range(plan.num_shards):
        start, stop = plan.bounds(index)
        batches = (feats[s:min(s + batch, stop)] for s in range(start, stop, batch))
        paths = [path_format.format(i) for i in range(start, stop)]
        write_shard(folder, index, plan, fingerprint, batches, paths, pids[start:stop], camids[start:stop])
    finalize_store(folder, plan, fingerprint, meta)


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


MARKET_SHAPE = (3368, 15913, 751, 6)  # Market-1501 test split: queries, gallery, identities, cameras


def market_shape_accuracy(dim: int, noise_scale: float = 1.0, seed: int = 0,
                          spectral: bool = False) -> Dict[str, float]:
    """Rank-1 / mAP / mINP of generated features of ``dim`` dimensions drawn at Market-1501 shape.

    How separable a feature generator is, on the scale of a real evaluation: bench_eval's 2048-d features
    (noise 1) give mAP 89.1 %, a published ResNet-50 BoT model about 86 % on the real Market-1501.

    Args:
        spectral: :func:`spectral_features` instead of :func:`clustered_features`.
    """
    from fastreid.evaluation import compute_distance_matrix, evaluate_rank

    nq, ng, nids, ncams = MARKET_SHAPE
    g = torch.Generator().manual_seed(seed)
    if spectral:
        world = spectral_world(nids, ncams, dim, g)
        qf, qp, qc = spectral_features(nq, world, g, noise_scale)
        gf, gp, gc = spectral_features(ng, world, g, noise_scale)
    else:
        centres, cams = torch.randn(nids, dim, generator=g), torch.randn(ncams, dim, generator=g)
        qf, qp, qc = clustered_features(nq, centres, cams, g, noise_scale)
        gf, gp, gc = clustered_features(ng, centres, cams, g, noise_scale)
    cmc, ap, inp = evaluate_rank(compute_distance_matrix(qf, gf, "cosine").numpy(), qp, gp, qc, gc)
    return {"R1": float(cmc[0]), "mAP": float(np.mean(ap)), "mINP": float(np.mean(inp))}


class SpectralWorld(NamedTuple):
    """Identities and cameras of :func:`spectral_features`: every variation follows one power-law spectrum.

    Attributes:
        centres: (num_ids, D) identity centres.
        cams: (num_cams, D) camera offsets.
        std: (D,) standard deviation of each principal direction (``k ** -exponent / 2``, total variance D).
        rotation: (D, D) orthogonal matrix whose columns are the principal directions.
    """

    centres: torch.Tensor
    cams: torch.Tensor
    std: torch.Tensor
    rotation: torch.Tensor


# Fitted to the features of the demo model (configs/Synthetic/bagtricks_R18.yml, 512-d) on the SyntheticPerson test
# split by benchmarks/feature_structure.py: log-log least squares of the eigenvalues against their rank gives an
# exponent of 1.40 for the within-identity spectrum (400 components) and 1.41 for the between-identity spectrum
# (first 30 components; 100 identities leave 99).
SPECTRUM_EXPONENT = 1.4


def spectral_world(num_ids: int, num_cams: int, dim: int, generator: torch.Generator,
                   exponent: float = SPECTRUM_EXPONENT) -> SpectralWorld:
    """Identity centres and camera offsets for :func:`spectral_features` (drawn from ``generator``)."""
    rotation = torch.linalg.qr(torch.randn(dim, dim, generator=generator))[0]
    power = torch.arange(1, dim + 1, dtype=torch.float32) ** -exponent
    std = (power / power.sum() * dim).sqrt()
    centres = (torch.randn(num_ids, dim, generator=generator) * std) @ rotation.t()
    cams = (torch.randn(num_cams, dim, generator=generator) * std) @ rotation.t()
    return SpectralWorld(centres, cams, std, rotation)


def spectral_features(n: int, world: SpectralWorld, generator: torch.Generator,
                      noise_scale: float = 0.22) -> Tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """``n`` re-id-like features with the low-dimensional structure of a trained model's, L2-normalised.

    Identity centre + camera offset + within-identity variation, all along the same decaying spectrum of
    principal directions (:func:`spectral_world`), unlike :func:`clustered_features` whose isotropic noise fills
    every direction equally. Sample i has noise std ``s_i = noise_scale * U(1.2, 3)`` and camera offset
    ``0.2 * s_i``. The default noise scale gives mAP 88.4 % at Market-1501 shape in 512-d (bench_eval's 2048-d
    features: 89.1 %).

    Returns:
        (n, D) float32 features, (n,) identity and (n,) camera labels.
    """
    pids = torch.randint(0, len(world.centres), (n,), generator=generator)
    camids = torch.randint(0, len(world.cams), (n,), generator=generator)
    sigma = noise_scale * (1.2 + 1.8 * torch.rand(n, 1, generator=generator))
    within = (torch.randn(n, len(world.std), generator=generator) * world.std) @ world.rotation.t()
    feats = world.centres[pids] + 0.2 * sigma * world.cams[camids] + sigma * within
    return torch.nn.functional.normalize(feats, dim=1), pids.numpy(), camids.numpy()


# Noise scale of each feature generator in 512-d (bench_index, feature_structure), chosen so that the features are
# as separable as bench_eval's 2048-d ones (mAP 89.1 % at Market-1501 shape; bench_index prints the check):
# - "spectral" (spectral_features, bench_index's default): identity, camera and within-identity variation along one
#   power-law spectrum fitted to a trained model's features; 0.22 gives mAP 88.4 % in 512-d.
# - "isotropic" (clustered_features, bench_eval's generator): the noise fills all D directions equally, so
#   that a query's true neighbours are barely closer than the rest of the gallery (a worst case for approximate
#   search); 0.67 gives mAP 88.7 % in 512-d (1.0, bench_eval's own, only 48 %: fewer dimensions, less orthogonal).
DEFAULT_NOISE = {"spectral": 0.22, "isotropic": 0.67}
