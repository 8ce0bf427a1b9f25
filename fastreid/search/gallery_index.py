"""A faiss index of gallery embeddings that remembers which image each vector came from.

Saved as a folder holding ``index.faiss`` (the faiss index), ``paths.json`` (the gallery image of every
vector, in index order) and ``meta.json`` (index kind, metric, search parameters and whatever the caller
adds, e.g. the model's config file and weights).

Metrics follow ``TEST.METRIC`` and index kinds are those of the one faiss index factory,
:mod:`fastreid.evaluation.faiss_index` (``METRIC_TABLE``, ``INDEX_KINDS``):

* ``"cosine"`` (default): features are L2-normalised and searched by inner product; the score is the cosine
  similarity, higher is closer.
* ``"euclidean"``: raw features searched by L2; the score is the squared Euclidean distance, lower is closer.

``"flat"`` is exact; ``"ivf"`` (``nlist`` lists, ``nprobe`` visited per query) and ``"hnsw"`` (``hnsw_m`` links
per node, ``ef_search`` candidates per query) are approximate and meant for large galleries.

faiss is imported on first use, so this module imports without it.
"""
import json
import logging
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..evaluation.faiss_index import INDEX_KINDS, METRIC_TABLE, build_faiss_index, import_faiss
from ..utils.file_io import atomic_write

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
        self._apply_search_params()

    @classmethod
    def build(cls, feats: Any, paths: Sequence[str], *, kind: str = "flat", metric: str = "cosine",
              nlist: Optional[int] = None, nprobe: int = 8, hnsw_m: int = 32, ef_search: int = 64,
              extra_meta: Optional[Dict[str, Any]] = None) -> "GalleryIndex":
        """Indexes ``feats``.

        Args:
            feats: (N, D) gallery features (NumPy or torch); normalised here for ``"cosine"``.
            paths: N gallery image paths.
            kind: ``"flat"``, ``"ivf"`` or ``"hnsw"``.
            metric: ``"cosine"`` or ``"euclidean"``.
            nlist: IVF lists (default about 4·sqrt(N), at most N).
            nprobe: IVF lists visited per query.
            hnsw_m: HNSW links per node.
            ef_search: HNSW candidate list size per query.
            extra_meta: JSON-serialisable entries stored in ``meta.json``.
        """
        feats = _as_matrix(feats)
        if len(feats) != len(paths):
            raise ValueError(f"{len(feats)} features but {len(paths)} paths")
        if len(feats) == 0:
            raise ValueError("Cannot index an empty gallery")
        nlist = min(nlist or _default_nlist(len(feats)), len(feats))
        index = build_faiss_index(feats.shape[1], metric, kind, nlist=nlist, hnsw_m=hnsw_m)  # checks both
        if METRIC_TABLE[metric].normalize:
            import_faiss().normalize_L2(feats)
        if not index.is_trained:
            index.train(feats)
        index.add(feats)
        meta = {"kind": kind, "metric": metric, "dim": int(feats.shape[1]), "nlist": nlist, "nprobe": nprobe,
                "hnsw_m": hnsw_m, "ef_search": ef_search, **(extra_meta or {})}
        logger.info("Indexed %d gallery vectors of dimension %d (%s, %s)", len(feats), feats.shape[1], kind, metric)
        return cls(index, paths, meta)

    def _apply_search_params(self) -> None:
        kind = self.meta.get("kind")
        if kind == "ivf":
            import_faiss().extract_index_ivf(self.index).nprobe = int(self.meta["nprobe"])
        elif kind == "hnsw":
            self.index.hnsw.efSearch = int(self.meta["ef_search"])

    @property
    def higher_is_closer(self) -> bool:
        """Whether larger scores mean closer (cosine similarity) or smaller (squared L2 distance)."""
        return METRIC_TABLE[self.meta["metric"]].higher_is_closer

    def __len__(self) -> int:
        return self.index.ntotal

    def search(self, queries: Any, k: int = 10) -> Tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest gallery vectors of every query.

        Args:
            queries: (Q, D) features (normalised here for ``"cosine"``).
            k: results per query; at most the gallery size are returned.

        Returns:
            (Q, k') scores and (Q, k') gallery indices, best first, with ``k' = min(k, len(self))``
            (approximate indexes may pad a row with index -1).
        """
        queries = _as_matrix(queries)
        if queries.shape[1] != self.meta["dim"]:
            raise ValueError(f"Query features have dimension {queries.shape[1]}, the index {self.meta['dim']}")
        if METRIC_TABLE[self.meta["metric"]].normalize:
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
        index_bytes = import_faiss().serialize_index(self.index)
        atomic_write(os.path.join(folder, "index.faiss"), lambda f: f.write(index_bytes.tobytes()))
        paths_text = json.dumps(self.paths, indent=0).encode()
        atomic_write(os.path.join(folder, "paths.json"), lambda f: f.write(paths_text))
        meta_text = json.dumps(self.meta, indent=2, sort_keys=True).encode()
        atomic_write(os.path.join(folder, "meta.json"), lambda f: f.write(meta_text))
        logger.info("Saved the index of %d images to %s", len(self), folder)

    @classmethod
    def load(cls, folder: str) -> "GalleryIndex":
        """Reopens an index written by :meth:`save`.

        Raises:
            FileNotFoundError: naming the missing file.
        """
        for name in _FILES:
            if not os.path.isfile(os.path.join(folder, name)):
                raise FileNotFoundError(f"{os.path.join(folder, name)} is missing; build the index first")
        index = import_faiss().read_index(os.path.join(folder, "index.faiss"))
        with open(os.path.join(folder, "paths.json")) as f:
            paths = json.load(f)
        with open(os.path.join(folder, "meta.json")) as f:
            meta = json.load(f)
        return cls(index, paths, meta)
