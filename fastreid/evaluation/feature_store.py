"""A sharded, memory-mapped feature store: features, image paths and labels written shard by shard.

Layout of a store folder::

    store/
      shard_00000/  features.npy (rows, D) float32, pids.npy, camids.npy (rows,) int64, paths.json, shard.json
      shard_00001/  ...
      manifest.json   written last, once every shard is complete

Rows are cut into shards at fixed boundaries (:class:`ShardPlan`). A shard is written into a temporary
folder ``.shard_00003.tmp-<pid>-<random>`` and renamed to ``shard_00003`` when complete, so a shard folder
is either absent or whole; a killed writer leaves only its temporary folder, which the next writer of that
shard removes. Each ``shard.json`` records the store fingerprint (model, config, image list, batching):
a re-run keeps complete shards of the same fingerprint, redoes missing or damaged ones and refuses to mix
fingerprints. ``manifest.json`` is written (atomically) only when all shards are complete, so a store with a
manifest is finished; :meth:`FeatureStore.open` reads the features as memory maps, never whole.
"""
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from numpy.lib.format import open_memmap

from fastreid.utils.file_io import atomic_write, try_lock

logger = logging.getLogger(__name__)

__all__ = ["FeatureStore", "ShardBusyError", "ShardPlan", "StoreMismatchError", "extract_shards", "finalize_store",
           "shard_is_complete", "shard_name", "write_shard"]

MANIFEST = "manifest.json"
STORE_FORMAT = 1
_FEATURES, _PIDS, _CAMIDS, _PATHS, _SHARD_META = "features.npy", "pids.npy", "camids.npy", "paths.json", "shard.json"

# (rows, D) float32 batches of one shard, in row order.
Batches = Iterable[np.ndarray]


class StoreMismatchError(ValueError):
    """The store folder holds shards of another extraction (different fingerprint or shard plan)."""


@dataclass(frozen=True)
class ShardPlan:
    """Fixed row boundaries: shard ``i`` holds rows ``[i * shard_rows, min((i + 1) * shard_rows, num_rows))``.

    Attributes:
        num_rows: rows of the whole store.
        shard_rows: rows per shard (the last may be shorter).
    """

    num_rows: int
    shard_rows: int

    @classmethod
    def aligned(cls, num_rows: int, num_shards: int, batch_size: int) -> "ShardPlan":
        """At most ``num_shards`` shards whose boundaries are multiples of ``batch_size``.

        Aligned boundaries give every batch the same images as one extraction of the whole list in batches
        of ``batch_size``, so sharding does not change the features (see ``tools/extract_features.py``).
        Fewer shards result when there are fewer batches than ``num_shards``.
        """
        if num_rows < 1 or num_shards < 1 or batch_size < 1:
            raise ValueError(f"ShardPlan needs num_rows, num_shards and batch_size >= 1, got {num_rows}, "
                             f"{num_shards}, {batch_size}")
        num_batches = -(-num_rows // batch_size)
        return cls(num_rows, -(-num_batches // num_shards) * batch_size)

    @property
    def num_shards(self) -> int:
        return -(-self.num_rows // self.shard_rows)

    def bounds(self, index: int) -> Tuple[int, int]:
        """``(start, stop)`` rows of shard ``index``."""
        if not 0 <= index < self.num_shards:
            raise IndexError(f"Shard {index} out of range [0, {self.num_shards})")
        start = index * self.shard_rows
        return start, min(start + self.shard_rows, self.num_rows)


def shard_name(index: int) -> str:
    return f"shard_{index:05d}"


def _read_json(path: str) -> Any:
    with open(path) as f:
        return json.load(f)


def _write_json(path: str, obj: Any) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=1).encode()))


def _shard_problem(folder: str, index: int, plan: ShardPlan, fingerprint: str) -> Optional[str]:
    """Why the shard folder is not a complete shard of this plan (None if it is); raises on a mismatch."""
    path = os.path.join(folder, shard_name(index))
    try:
        meta = _read_json(os.path.join(path, _SHARD_META))
    except (OSError, ValueError) as e:
        return f"unreadable {_SHARD_META} ({e})"
    if meta.get("fingerprint") != fingerprint:
        raise StoreMismatchError(
            f"{path} was extracted with fingerprint {meta.get('fingerprint')}, this run has {fingerprint} (another "
            "model, config, image list or batch size). Write to a new --output folder or delete the old store.")
    start, stop = plan.bounds(index)
    if (meta.get("start"), meta.get("rows")) != (start, stop - start):
        raise StoreMismatchError(f"{path} holds rows {meta.get('start')}+{meta.get('rows')}, the shard plan says "
                                 f"{start}+{stop - start}: pass the --shards of the first run, or a new --output.")
    try:
        feats = np.load(os.path.join(path, _FEATURES), mmap_mode="r")
        rows = [len(np.load(os.path.join(path, name), mmap_mode="r")) for name in (_PIDS, _CAMIDS)]
        rows.append(len(_read_json(os.path.join(path, _PATHS))))
    except (OSError, ValueError) as e:
        return f"unreadable arrays ({e})"
    if feats.shape != (stop - start, meta.get("dim")) or feats.dtype != np.float32 or set(rows) != {stop - start}:
        return f"features {feats.shape} {feats.dtype} and labels {rows} do not match {stop - start} rows"
    return None


def shard_is_complete(folder: str, index: int, plan: ShardPlan, fingerprint: str,
                      remove_damaged: bool = False) -> bool:
    """Whether shard ``index`` of ``folder`` exists whole.

    Args:
        remove_damaged: delete a damaged shard folder (only the process that owns the shard should).

    Raises:
        StoreMismatchError: the shard comes from another extraction or shard plan.
    """
    path = os.path.join(folder, shard_name(index))
    if not os.path.isdir(path):
        return False
    problem = _shard_problem(folder, index, plan, fingerprint)
    if problem is None:
        return True
    logger.warning("%s damaged shard %s: %s", "Removing the" if remove_damaged else "Found a", path, problem)
    if remove_damaged:
        shutil.rmtree(path)
    return False


class ShardBusyError(RuntimeError):
    """Another live process is writing the same shard."""


def _lock_folder(path: str) -> Optional[int]:
    """An open descriptor of the folder ``path`` holding an exclusive lock; None when another process holds it
    (see :func:`~fastreid.utils.file_io.try_lock`: without flock the descriptor comes back unlocked)."""
    fd = os.open(path, os.O_RDONLY)
    if try_lock(fd):
        return fd
    os.close(fd)
    return None


def _remove_temporaries(folder: str, index: int) -> None:
    """Removes the partial shard ``index`` of dead runs; raises when a live process is writing that shard."""
    prefix = f".{shard_name(index)}.tmp-"
    for name in os.listdir(folder):
        if not name.startswith(prefix):
            continue
        path = os.path.join(folder, name)
        fd = _lock_folder(path)  # a writer holds the lock on its temporary folder until it is renamed
        if fd is None:
            raise ShardBusyError(
                f"Shard {index} of {folder} is being written by another process ({name}). Each shard needs one "
                "writer: give every job its own --shard-rank, or let torch.distributed ranks share the work.")
        try:
            logger.info("Removing the partial shard %s of an interrupted run", name)
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)


def _fsync_folder(path: str) -> None:
    for name in os.listdir(path):
        with open(os.path.join(path, name), "rb") as f:
            os.fsync(f.fileno())


def _write_arrays(tmp: str, index: int, rows: int, batches: Batches) -> int:
    """Streams the feature batches of shard ``index`` into ``tmp/features.npy``; returns D."""
    feats, filled = None, 0
    for batch in batches:
        batch = np.asarray(batch, dtype=np.float32)
        if feats is None:
            feats = open_memmap(os.path.join(tmp, _FEATURES), mode="w+", dtype=np.float32,
                                shape=(rows, batch.shape[1]))
        if filled + len(batch) > rows:
            raise ValueError(f"Shard {index}: the batches hold more than its {rows} rows")
        feats[filled:filled + len(batch)] = batch
        filled += len(batch)
    if feats is None or filled != rows:
        raise ValueError(f"Shard {index}: the batches hold {filled} rows, expected {rows}")
    feats.flush()
    return feats.shape[1]


def write_shard(folder: str, index: int, plan: ShardPlan, fingerprint: str, batches: Batches,
                paths: Sequence[str], pids: np.ndarray, camids: np.ndarray) -> None:
    """Writes shard ``index`` from its feature ``batches`` and labels, atomically (temporary folder, rename).

    Args:
        folder: the store folder (created if needed).
        index: shard number; its rows are ``plan.bounds(index)``.
        plan: the row boundaries of the store.
        fingerprint: identifies the extraction (checked on resume).
        batches: (b, D) float32 arrays whose rows total the shard's rows, in order.
        paths, pids, camids: the shard's (rows,) image paths, identities and cameras.
    """
    start, stop = plan.bounds(index)
    rows = stop - start
    if not len(paths) == len(pids) == len(camids) == rows:
        raise ValueError(f"Shard {index} has {rows} rows but {len(paths)} paths, {len(pids)} pids, "
                         f"{len(camids)} camids")
    os.makedirs(folder, exist_ok=True)
    _remove_temporaries(folder, index)
    tmp = os.path.join(folder, f".{shard_name(index)}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.makedirs(tmp)
    lock = _lock_folder(tmp)  # tells other writers of this shard that this temporary is alive
    try:
        dim = _write_arrays(tmp, index, rows, batches)
        np.save(os.path.join(tmp, _PIDS), np.asarray(pids, dtype=np.int64))
        np.save(os.path.join(tmp, _CAMIDS), np.asarray(camids, dtype=np.int64))
        with open(os.path.join(tmp, _PATHS), "w") as f:
            json.dump(list(paths), f)
        with open(os.path.join(tmp, _SHARD_META), "w") as f:
            json.dump({"fingerprint": fingerprint, "start": start, "rows": rows, "dim": dim}, f)
        _fsync_folder(tmp)
        try:
            os.rename(tmp, os.path.join(folder, shard_name(index)))
        except OSError:
            if not shard_is_complete(folder, index, plan, fingerprint):
                raise
            # Another process started the same shard at the same moment and finished first; its copy is equal.
            logger.info("Shard %d was written by another process meanwhile; keeping that copy", index)
            shutil.rmtree(tmp, ignore_errors=True)
            return
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if lock is not None:
            os.close(lock)
    logger.info("Wrote shard %d (rows %d-%d) to %s", index, start, stop, folder)


def finalize_store(folder: str, plan: ShardPlan, fingerprint: str, meta: Optional[Dict[str, Any]] = None) -> bool:
    """Writes ``manifest.json`` if every shard is complete; returns whether the store is finished.

    Any process may call it at any time (it only reads the shards): the last writer to finish finds them all.
    The manifest lists the shards, the feature dimension, row counts, the fingerprint and ``meta`` (e.g. the
    model and config). Idempotent: finishing a finished store rewrites the same manifest.
    """
    missing = [i for i in range(plan.num_shards) if not shard_is_complete(folder, i, plan, fingerprint)]
    if missing:
        logger.info("Store %s not finished: shards %s are missing", folder, missing)
        return False
    dims = {_read_json(os.path.join(folder, shard_name(i), _SHARD_META))["dim"] for i in range(plan.num_shards)}
    if len(dims) != 1:
        raise StoreMismatchError(f"Shards of {folder} have different feature dimensions {sorted(dims)}")
    shards = [{"name": shard_name(i), "start": plan.bounds(i)[0], "rows": plan.bounds(i)[1] - plan.bounds(i)[0]}
              for i in range(plan.num_shards)]
    _write_json(os.path.join(folder, MANIFEST), {
        "format": STORE_FORMAT, "num_rows": plan.num_rows, "shard_rows": plan.shard_rows, "dim": dims.pop(),
        "fingerprint": fingerprint, "shards": shards, "meta": meta or {}})
    logger.info("Finished the store %s: %d rows in %d shards", folder, plan.num_rows, plan.num_shards)
    return True


class FeatureStore:
    """A finished store, read without loading the features: each shard's ``features.npy`` is a memory map.

    Attributes:
        folder: the store folder.
        manifest: the parsed ``manifest.json``.
        paths: (N,) image paths; pids, camids: (N,) int64 labels (small, held in memory).
    """

    def __init__(self, folder: str, manifest: Dict[str, Any], shards: List[np.ndarray], paths: List[str],
                 pids: np.ndarray, camids: np.ndarray) -> None:
        self.folder = folder
        self.manifest = manifest
        self._shards = shards
        self._starts = np.cumsum([0] + [len(s) for s in shards])
        self.paths = paths
        self.pids = pids
        self.camids = camids

    @classmethod
    def open(cls, folder: str) -> "FeatureStore":
        """Opens a finished store.

        Raises:
            FileNotFoundError: no ``manifest.json`` (the extraction has not finished: re-run it to complete
                the missing shards).
            StoreMismatchError: a shard does not match the manifest.
        """
        path = os.path.join(folder, MANIFEST)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{folder} is not a finished feature store (no {MANIFEST}); re-run "
                                    "tools/extract_features.py with the same arguments to complete it.")
        manifest = _read_json(path)
        shards, paths, pids, camids = [], [], [], []
        for entry in manifest["shards"]:
            shard = os.path.join(folder, entry["name"])
            feats = np.load(os.path.join(shard, _FEATURES), mmap_mode="r")
            if feats.shape != (entry["rows"], manifest["dim"]):
                raise StoreMismatchError(f"{shard}: features of shape {feats.shape}, the manifest says "
                                         f"({entry['rows']}, {manifest['dim']})")
            shards.append(feats)
            paths += _read_json(os.path.join(shard, _PATHS))
            pids.append(np.load(os.path.join(shard, _PIDS)))
            camids.append(np.load(os.path.join(shard, _CAMIDS)))
        return cls(folder, manifest, shards, paths, np.concatenate(pids), np.concatenate(camids))

    def __len__(self) -> int:
        return int(self._starts[-1])

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    def rows(self, start: int, stop: int) -> np.ndarray:
        """(stop - start, D) float32 features of rows ``start:stop`` (a copy read from the shards)."""
        start, stop = max(0, start), min(stop, len(self))
        out = np.empty((max(0, stop - start), self.dim), np.float32)
        first = int(np.searchsorted(self._starts, start, side="right")) - 1
        for i in range(max(first, 0), len(self._shards)):
            s0 = int(self._starts[i])
            lo, hi = max(start, s0), min(stop, int(self._starts[i + 1]))
            if lo >= hi:
                break
            out[lo - start:hi - start] = self._shards[i][lo - s0:hi - s0]
        return out

    def take(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), D) float32 features of the given rows, in ascending order (a copy read from the shards).

        Raises:
            ValueError: ``rows`` is not sorted ascending or leaves ``[0, len(self))``.
        """
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows[0] < 0 or rows[-1] >= len(self) or np.any(np.diff(rows) < 0)):
            raise ValueError(f"rows must be sorted ascending within [0, {len(self)})")
        out = np.empty((len(rows), self.dim), np.float32)
        cuts = np.searchsorted(rows, self._starts)
        for i, shard in enumerate(self._shards):
            lo, hi = int(cuts[i]), int(cuts[i + 1])
            if lo < hi:
                out[lo:hi] = shard[rows[lo:hi] - int(self._starts[i])]
        return out

    def iter_chunks(self, chunk_rows: int) -> Iterator[Tuple[int, np.ndarray]]:
        """Yields ``(start, features)`` of consecutive chunks of ``chunk_rows`` rows (the last may be shorter)."""
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        for start in range(0, len(self), chunk_rows):
            yield start, self.rows(start, start + chunk_rows)


def extract_shards(folder: str, plan: ShardPlan, fingerprint: str, shard_ids: Iterable[int],
                   embed: Callable[[Sequence[str]], np.ndarray], batch_size: int, paths: Sequence[str],
                   pids: np.ndarray, camids: np.ndarray) -> List[int]:
    """Extracts and writes the given shards that are not complete yet; returns the ones written.

    Args:
        folder, plan, fingerprint: the store (see :func:`write_shard`).
        shard_ids: shards this process owns.
        embed: image paths -> (n, D) float32 features.
        batch_size: paths per ``embed`` call (shard boundaries are multiples of it, see :meth:`ShardPlan.aligned`).
        paths, pids, camids: the whole store's (N,) inputs.
    """
    written = []
    for index in shard_ids:
        if shard_is_complete(folder, index, plan, fingerprint, remove_damaged=True):
            logger.info("Shard %d is complete already; skipped", index)
            continue
        start, stop = plan.bounds(index)
        batches = (embed(paths[s:min(s + batch_size, stop)]) for s in range(start, stop, batch_size))
        write_shard(folder, index, plan, fingerprint, batches, paths[start:stop], pids[start:stop],
                    camids[start:stop])
        written.append(index)
    return written
