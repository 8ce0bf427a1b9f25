"""A faiss index of gallery embeddings that remembers which image each vector came from.

Saved as a folder holding ``index.faiss`` (the faiss index), ``paths.json`` (the gallery image of every
vector, in index order) and ``meta.json`` (index kind, metric, search parameters and whatever the caller
adds, e.g. the model's config file and weights).

Metrics follow ``TEST.METRIC`` and index kinds are those of the one faiss index factory,
:mod:`fastreid.evaluation.faiss_index` (``METRIC_TABLE``, ``INDEX_KINDS``):

* ``"cosine"`` (default): features are L2-normalised and searched by inner product; the score is the cosine
  similarity, higher is closer.
* ``"euclidean"``: raw features searched by L2; the score is the squared Euclidean distance, lower is closer.

``"flat"`` is exact; ``"ivf"`` / ``"ivfpq"`` (``nlist`` lists, ``nprobe`` visited per query; IVF-PQ stores
``pq_m`` codes of ``pq_nbits`` bits per vector) and ``"hnsw"`` (``hnsw_m`` links per node, ``ef_search``
candidates per query) are approximate and meant for large galleries. IVF kinds are trained on a seeded random
sample of at most ``train_size`` vectors. The search parameters are stored in ``meta.json`` and set again on
:meth:`GalleryIndex.load`.

faiss is imported on first use, so this module imports without it.
"""
import json
import logging
import math
import os
import re
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..evaluation.faiss_index import (DEFAULT_EF_SEARCH, DEFAULT_NPROBE, INDEX_KINDS, METRIC_TABLE,
                                      build_faiss_index, import_faiss, set_search_params, train_faiss_index)
from ..utils.file_io import atomic_write, describe_file_start

__all__ = ["GalleryIndex", "INDEX_KINDS", "METRICS"]

logger = logging.getLogger(__name__)

METRICS = tuple(METRIC_TABLE)
_FILES = ("index.faiss", "paths.json", "meta.json")


def _as_matrix(feats: Any) -> np.ndarray:
    """(N, D) C-contiguous float32 array from a NumPy array or torch tensor."""
    if hasattr(feats, "detach"):
        feats = feats.detach().cpu().numpy()
    feats = np.ascontiguousarray(feats, dtype=np.float32)
    if feats.ndim != 2:
        raise ValueError(f"Expected (N, D) features, got shape {feats.shape}")
    return feats


def _default_nlist(num: int) -> int:
    # faiss' rule of thumb is about sqrt(N) lists; k-means needs at least one point per list.
    return max(1, min(num, int(round(4 * math.sqrt(num)))))


def _normalizes(metric: str) -> bool:
    if metric not in METRIC_TABLE:
        raise ValueError(f"Unknown metric {metric!r}; expected one of {METRICS}")
    return METRIC_TABLE[metric].normalize


class _ArrayRows:
    """Gallery vectors held in memory; :meth:`prepare` normalises them in place when the metric asks for it."""

    def __init__(self, feats: np.ndarray, normalize: bool) -> None:
        self.feats = feats
        self.normalize = normalize
        self.dim = int(feats.shape[1])

    def __len__(self) -> int:
        return len(self.feats)

    def prepare(self) -> None:
        if self.normalize:
            import_faiss().normalize_L2(self.feats)

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        return self.feats if len(rows) == len(self.feats) else self.feats[rows]  # all rows: no copy

    def chunks(self) -> Iterator[np.ndarray]:
        yield self.feats


class _StoreRows:
    """Gallery vectors read from a feature store a chunk at a time, each copy normalised if the metric asks."""

    def __init__(self, store: Any, normalize: bool, chunk_rows: int) -> None:
        self.store = store
        self.normalize = normalize
        self.chunk_rows = chunk_rows
        self.dim = int(store.dim)

    def __len__(self) -> int:
        return len(self.store)

    def prepare(self) -> None:
        """Nothing to do up front: every copy read is normalised as it is read."""

    def _prepared(self, feats: np.ndarray) -> np.ndarray:
        if self.normalize:
            import_faiss().normalize_L2(feats)
        return feats

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        return self._prepared(self.store.take(rows))

    def chunks(self) -> Iterator[np.ndarray]:
        for _, feats in self.store.iter_chunks(self.chunk_rows):
            yield self._prepared(feats)


class GalleryIndex:
    """Gallery embeddings in a faiss index, with the image path of every vector.

    Build with :meth:`build`, reopen with :meth:`load`.

    Attributes:
        index: the faiss index.
        paths: gallery image of each vector, in index order.
        meta: ``kind``, ``metric``, ``dim``, search parameters and caller-supplied entries.
    """

    def __init__(self, index: Any, paths: Sequence[str], meta: Dict[str, Any]) -> None:
        if index.ntotal != len(paths):
            raise ValueError(f"The index holds {index.ntotal} vectors but {len(paths)} paths were given")
        self.index = index
        self.paths = list(paths)
        self.meta = dict(meta)
        self.set_search_params()

    @classmethod
    def build(cls, feats: Any, paths: Sequence[str], *, kind: str = "flat", metric: str = "cosine",
              nlist: Optional[int] = None, nprobe: int = DEFAULT_NPROBE, hnsw_m: int = 32,
              ef_search: int = DEFAULT_EF_SEARCH, pq_m: int = 64, pq_nbits: int = 8, refine_factor: int = 0,
              train_size: Optional[int] = None, seed: int = 0,
              extra_meta: Optional[Dict[str, Any]] = None) -> "GalleryIndex":
        """Indexes ``feats``.

        Args:
            feats: (N, D) gallery features (NumPy or torch); normalised here (in place when float32 NumPy) for
                ``"cosine"``.
            paths: N gallery image paths.
            kind: ``"flat"``, ``"ivf"``, ``"ivfpq"`` or ``"hnsw"``.
            metric: ``"cosine"`` or ``"euclidean"``.
            nlist: IVF lists (default about 4·sqrt(N)); more than N is an error.
            nprobe: IVF lists visited per query.
            hnsw_m: HNSW links per node.
            ef_search: HNSW candidate list size per query.
            pq_m: IVF-PQ sub-vectors per code (must divide D).
            pq_nbits: IVF-PQ bits per sub-vector code.
            refine_factor: IVF-PQ only: when positive, the full vectors are kept too and the
                ``refine_factor * k`` best PQ candidates are re-ranked exactly.
            train_size: IVF training sample size (default :func:`~fastreid.evaluation.faiss_index.default_train_size`).
            seed: seed of the training sample.
            extra_meta: JSON-serialisable entries stored in ``meta.json``.
        """
        feats = _as_matrix(feats)
        if len(feats) != len(paths):
            raise ValueError(f"{len(feats)} features but {len(paths)} paths")
        return cls._build(_ArrayRows(feats, _normalizes(metric)), paths, kind=kind, metric=metric, nlist=nlist,
                          nprobe=nprobe, hnsw_m=hnsw_m, ef_search=ef_search, pq_m=pq_m, pq_nbits=pq_nbits,
                          refine_factor=refine_factor, train_size=train_size, seed=seed, extra_meta=extra_meta)

    @classmethod
    def build_from_store(cls, store: Any, *, metric: Optional[str] = None, chunk_rows: int = 65536,
                         **options: Any) -> "GalleryIndex":
        """Indexes a feature store (:class:`~fastreid.evaluation.feature_store.FeatureStore`) without loading it.

        The training sample is gathered from the store's memory maps and the vectors are added ``chunk_rows`` at a
        time, so besides the index only one chunk and the sample are held: an IVF-PQ index of a gallery far
        larger than RAM can be built.

        Args:
            store: a finished store (``len``, ``dim``, ``paths``, ``take``, ``iter_chunks`` and ``manifest``).
            metric: ``"cosine"`` or ``"euclidean"``; default: the metric the store was extracted for
                (``TEST.METRIC`` in its manifest), else cosine.
            chunk_rows: vectors read and added at a time.
            options: as for :meth:`build` (kind, nlist, nprobe, ...).
        """
        metric = metric or store.manifest.get("meta", {}).get("metric", "cosine")
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        return cls._build(_StoreRows(store, _normalizes(metric), chunk_rows), store.paths, metric=metric,
                          **options)

    @classmethod
    def _build(cls, rows: Union[_ArrayRows, _StoreRows], paths: Sequence[str], *, kind: str = "flat",
               metric: str = "cosine", nlist: Optional[int] = None, nprobe: int = DEFAULT_NPROBE,
               hnsw_m: int = 32, ef_search: int = DEFAULT_EF_SEARCH, pq_m: int = 64, pq_nbits: int = 8,
               refine_factor: int = 0, train_size: Optional[int] = None, seed: int = 0,
               extra_meta: Optional[Dict[str, Any]] = None) -> "GalleryIndex":
        num = len(rows)
        if num == 0:
            raise ValueError("Cannot index an empty gallery")
        nlist = nlist or _default_nlist(num)
        index = build_faiss_index(rows.dim, metric, kind, nlist=nlist, hnsw_m=hnsw_m, pq_m=pq_m,
                                  pq_nbits=pq_nbits, refine=refine_factor > 0)  # checks every parameter
        rows.prepare()  # after the index parameters were checked, so a bad one leaves the caller's array alone
        trained_on = train_faiss_index(index, rows, train_size=train_size, seed=seed)
        for chunk in rows.chunks():
            index.add(chunk)
        meta = {"kind": kind, "metric": metric, "dim": rows.dim, "nlist": nlist, "nprobe": nprobe,
                "hnsw_m": hnsw_m, "ef_search": ef_search, "trained_on": trained_on, **(extra_meta or {})}
        if kind == "ivfpq":
            meta.update(pq_m=pq_m, pq_nbits=pq_nbits, refine_factor=refine_factor)
        logger.info("Indexed %d gallery vectors of dimension %d (%s, %s)", num, rows.dim, kind, metric)
        return cls(index, paths, meta)

    def set_search_params(self, *, nprobe: Optional[int] = None, ef_search: Optional[int] = None) -> None:
        """Sets the query-time parameters on the index, recording given values in ``meta``.

        Args:
            nprobe: IVF lists visited per query (``None`` keeps the recorded one).
            ef_search: HNSW candidate list size per query (``None`` keeps the recorded one).

        Raises:
            ValueError: a value below 1.
        """
        for key, value in (("nprobe", nprobe), ("ef_search", ef_search)):
            if value is not None:
                if value < 1:
                    raise ValueError(f"{key} must be at least 1, got {value}")
                self.meta[key] = int(value)
        set_search_params(self.index, nprobe=int(self.meta.get("nprobe", DEFAULT_NPROBE)),
                          ef_search=int(self.meta.get("ef_search", DEFAULT_EF_SEARCH)),
                          refine_factor=max(1, int(self.meta.get("refine_factor", 1))))

    @property
    def higher_is_closer(self) -> bool:
        """Whether larger scores mean closer (cosine similarity) or smaller (squared L2 distance)."""
        return METRIC_TABLE[self.meta["metric"]].higher_is_closer

    def __len__(self) -> int:
        return self.index.ntotal

    def search(self, queries: Any, k: int = 10) -> Tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest gallery vectors of every query.

        Args:
            queries: (Q, D) features (a normalised copy is searched for ``"cosine"``).
            k: results per query; at most the gallery size are returned.

        Returns:
            (Q, k') scores and (Q, k') gallery indices, best first, with ``k' = min(k, len(self))``
            (approximate indexes may pad a row with index -1).
        """
        queries = _as_matrix(queries)
        if queries.shape[1] != self.meta["dim"]:
            raise ValueError(f"Query features have dimension {queries.shape[1]}, the index {self.meta['dim']}")
        if METRIC_TABLE[self.meta["metric"]].normalize:
            queries = queries.copy()  # the caller's array is left as it was
            import_faiss().normalize_L2(queries)
        return self.index.search(queries, max(1, min(k, len(self))))

    def search_paths(self, queries: Any, k: int = 10) -> List[List[Tuple[str, float]]]:
        """As :meth:`search`, as ``[(gallery path, score), ...]`` per query (padding dropped)."""
        scores, indices = self.search(queries, k)
        return [[(self.paths[i], float(s)) for s, i in zip(srow, irow) if i >= 0]
                for srow, irow in zip(scores, indices)]

    def save(self, folder: str) -> None:
        """Writes ``index.faiss``, ``paths.json`` and ``meta.json`` into ``folder`` (created if missing).

        Each file is written atomically; :meth:`load` rejects an index and a path list of different lengths.
        """
        os.makedirs(folder, exist_ok=True)
        atomic_write(os.path.join(folder, "index.faiss"), self._write_index)
        paths_text = json.dumps(self.paths, indent=0).encode()
        atomic_write(os.path.join(folder, "paths.json"), lambda f: f.write(paths_text))
        meta_text = json.dumps(self.meta, indent=2, sort_keys=True).encode()
        atomic_write(os.path.join(folder, "meta.json"), lambda f: f.write(meta_text))
        logger.info("Saved the index of %d images to %s", len(self), folder)

    def _write_index(self, f: Any) -> None:
        """Streams the faiss index into the open file ``f`` (no in-memory copy of a multi-GiB index)."""
        faiss = import_faiss()
        writer = faiss.PyCallbackIOWriter(f.write)
        faiss.write_index(self.index, writer)
        del writer  # flushes faiss' buffer into f

    @classmethod
    def load(cls, folder: str) -> "GalleryIndex":
        """Reopens an index written by :meth:`save`.

        Nothing in the folder can run code: the JSON files are parsed as data and checked, and
        ``index.faiss`` is read by faiss only when its header is one of the index kinds fastreid builds.

        Raises:
            FileNotFoundError: naming the missing file.
            ValueError: naming the file that is not what :meth:`save` writes (not JSON, wrong types, another
                kind of index, damaged or truncated, or index and paths of different sizes).
        """
        for name in _FILES:
            if not os.path.isfile(os.path.join(folder, name)):
                raise FileNotFoundError(f"{os.path.join(folder, name)} is missing; build the index first")
        meta = _read_meta(os.path.join(folder, "meta.json"))
        paths = _read_json(os.path.join(folder, "paths.json"))
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ValueError(f"{os.path.join(folder, 'paths.json')} is not a list of image paths "
                             f"(found a {type(paths).__name__}); rebuild the index with tools/search.py index")
        index = _read_index(os.path.join(folder, "index.faiss"), meta["kind"])
        if index.d != meta["dim"]:
            raise ValueError(f"{os.path.join(folder, 'index.faiss')} holds vectors of dimension {index.d} but "
                             f"{os.path.join(folder, 'meta.json')} says {meta['dim']}; rebuild the index")
        if index.ntotal != len(paths):
            raise ValueError(f"The index in {folder} holds {index.ntotal} vectors but paths.json {len(paths)} "
                             "paths; rebuild the index")
        return cls(index, paths, meta)


# The header (fourcc) of each index kind as faiss writes it: what build_faiss_index makes, nothing else.
_FOURCCS = {"flat": (b"IxFI", b"IxF2"), "ivf": (b"IwFl",), "ivfpq": (b"IwPQ", b"IxRF"), "hnsw": (b"IHNf",)}
_REBUILD = "rebuild the index with tools/search.py index"


def _read_json(path: str) -> Any:
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); {_REBUILD}") from None


def _read_meta(path: str) -> Dict[str, Any]:
    meta = _read_json(path)
    if not isinstance(meta, dict):
        raise ValueError(f"{path} is not a JSON object (found a {type(meta).__name__}); {_REBUILD}")
    if meta.get("kind") not in INDEX_KINDS:
        raise ValueError(f"{path}: index kind {meta.get('kind')!r} is not one of {INDEX_KINDS}; {_REBUILD}")
    if meta.get("metric") not in METRICS:
        raise ValueError(f"{path}: metric {meta.get('metric')!r} is not one of {METRICS}; {_REBUILD}")
    for key, lowest in (("dim", 1), ("nprobe", 1), ("ef_search", 1), ("refine_factor", 0)):
        value = meta.get(key, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < lowest:
            raise ValueError(f"{path}: {key} must be an integer >= {lowest}, found {value!r}; {_REBUILD}")
    return meta


def _read_index(path: str, kind: str) -> Any:
    with open(path, "rb") as f:
        header = f.read(4)
    if header not in _FOURCCS[kind]:
        found = (f"a faiss index of another type, {header.decode()}" if re.fullmatch(rb"I[A-Za-z0-9]{3}", header)
                 else describe_file_start(path))
        raise ValueError(f"{path} is not a faiss index of kind {kind!r} as fastreid writes them ({found}); "
                         f"{_REBUILD}")
    try:
        return import_faiss().read_index(path)
    except RuntimeError as e:  # faiss checks sizes while reading and raises on any inconsistency
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else "unreadable"
        raise ValueError(f"{path} is damaged or truncated (faiss: {reason}); {_REBUILD}") from None
