"""Turn CUHK03's official release (``cuhk03/cuhk03_release/cuhk-03.mat``) into the layout :class:`CUHK03` reads.

``cuhk-03.mat`` is MATLAB v7.3, i.e. HDF5, read with h5py (an optional dependency: ``pip install h5py`` or
``pip install fastreid[cuhk03]``). h5py shows every MATLAB array transposed. The file holds:

* ``labeled`` and ``detected``: 5 object references, one per camera pair (MATLAB 5×1 cell). Each points to an
  ``n_pids × 10`` cell of image references (h5py shape ``(10, n_pids)``): slots 1-5 come from the pair's first
  camera, slots 6-10 from the second. An image is ``H × W × 3`` uint8 (h5py shape ``(3, W, H)``); an empty
  cell is a small placeholder array that is not 3-D.
* ``testsets``: 20 references (the classic splits), each to a ``100 × 2`` array of 1-based
  ``(camera pair, pid within the pair)`` rows (h5py shape ``(2, 100)``).

Products, written next to ``cuhk03_release/`` as torchreid writes them, so either tool's output serves both:

* ``images_{labeled,detected}/<campair>_<pid:03d>_<view>_<slot:02d>.png`` (1-based, view 1 or 2);
* ``splits_classic_{labeled,detected}.json``: a list of 20 splits, each a dict with ``train``, ``query`` and
  ``gallery`` lists of ``[path, pid, camid]`` plus ``num_{train,query,gallery}_{pids,imgs}`` counts.

Classic protocol (Li et al., CVPR 2014): the 100 ids of a test set are tested, the other 1367 train. Ids
are numbered ``0..N-1`` per subset in (camera pair, pid) order, camid is ``view - 1`` (0 or 1, the same
two values in every camera pair), and query and gallery are both all test images; the evaluator drops gallery
items with the query's id and camera, so each query is ranked against the other view.

The new 767/700 protocol needs no product here: :class:`CUHK03` reads ``cuhk03_new_protocol_config_*.mat``
directly.
"""
import itertools
import json
import logging
import os
import shutil
import uuid
from typing import Any, Iterable, List, Sequence, Set, Tuple

import numpy as np
from PIL import Image

from fastreid.utils.file_io import atomic_write

logger = logging.getLogger(__name__)

__all__ = ["KINDS", "RELEASE_MAT", "classic_splits", "image_name", "prepare_cuhk03"]

#: The two box kinds of CUHK03 and the names of their datasets in ``cuhk-03.mat``.
KINDS = ("labeled", "detected")
#: Path of the official release's .mat file relative to the dataset folder.
RELEASE_MAT = os.path.join("cuhk03_release", "cuhk-03.mat")

_SLOTS = 10
_SLOTS_PER_VIEW = 5

# (campair, pid, [(slot, h5py reference)]), 1-based campair and pid, 0-based slot.
_Cells = List[Tuple[int, int, List[Tuple[int, Any]]]]
# (campair, pid, [(image path, camid)]).
IdImages = Tuple[int, int, List[Tuple[str, int]]]


def image_name(campair: int, pid: int, slot: int) -> str:
    """File name of one extracted image.

    Args:
        campair: 1-based camera pair (1-5).
        pid: 1-based id within the camera pair.
        slot: 0-based image slot of the id's row (0-9; slots 0-4 are view 1, 5-9 view 2).
    """
    return f"{campair}_{pid:03d}_{slot // _SLOTS_PER_VIEW + 1}_{slot + 1:02d}.png"


def classic_splits(ids: Sequence[IdImages], testsets: Iterable[Set[Tuple[int, int]]]) -> List[dict]:
    """The classic splits in torchreid's JSON layout.

    Args:
        ids: every id as ``(campair, pid, [(image path, camid), ...])``, in (campair, pid) order.
        testsets: per split, the ``(campair, pid)`` pairs of its test ids.

    Returns:
        One dict per test set with ``train``, ``query``, ``gallery`` record lists and their counts.
    """
    splits = []
    for test_pairs in testsets:
        train_ids = [i for i in ids if (i[0], i[1]) not in test_pairs]
        test_ids = [i for i in ids if (i[0], i[1]) in test_pairs]
        train, test = _records(train_ids), _records(test_ids)
        splits.append({
            "train": train, "query": test, "gallery": test,
            "num_train_pids": len(train_ids), "num_train_imgs": len(train),
            "num_query_pids": len(test_ids), "num_query_imgs": len(test),
            "num_gallery_pids": len(test_ids), "num_gallery_imgs": len(test),
        })
    return splits


def _records(ids: Sequence[IdImages]) -> List[list]:
    """``[path, label, camid]`` records, ids labelled ``0..N-1`` in the given order."""
    return [[path, label, camid] for label, (_, _, images) in enumerate(ids) for path, camid in images]


def prepare_cuhk03(data_dir: str) -> None:
    """Extract images and classic splits from ``data_dir/cuhk03_release/cuhk-03.mat`` if they are missing.

    Does nothing without the release file or when ``images_{kind}/`` and ``splits_classic_{kind}.json`` exist
    for both kinds. Images are extracted into a hidden temporary folder renamed into place when complete, and
    split files are written to a temporary file then renamed, so an interrupted run leaves no partial product
    and the next call redoes the missing part. Concurrent calls (e.g. one per training process) are safe.

    Args:
        data_dir: the CUHK03 folder (``<datasets root>/cuhk03``).

    Raises:
        ImportError: h5py is not installed (it is only imported when there is work to do).
    """
    mat_path = os.path.join(data_dir, RELEASE_MAT)
    if not os.path.isfile(mat_path):
        return
    todo = [kind for kind in KINDS
            if not (os.path.isdir(_image_dir(data_dir, kind)) and os.path.isfile(_split_path(data_dir, kind)))]
    if not todo:
        return
    h5py = _import_h5py(mat_path)
    with h5py.File(mat_path, "r") as mat:
        testsets = _read_testsets(mat, mat_path)
        for kind in todo:
            image_dir = _image_dir(data_dir, kind)
            cells = _read_cells(mat, kind, mat_path)
            if not os.path.isdir(image_dir):
                _extract_images(mat, cells, image_dir)
            split_path = _split_path(data_dir, kind)
            if not os.path.isfile(split_path):
                splits = classic_splits(_id_images(cells, image_dir), testsets)
                atomic_write(split_path, lambda f: f.write(json.dumps(splits).encode()))
                logger.info("CUHK03: wrote %d classic splits to %s", len(testsets), split_path)


def _image_dir(data_dir: str, kind: str) -> str:
    return os.path.join(data_dir, f"images_{kind}")


def _split_path(data_dir: str, kind: str) -> str:
    return os.path.join(data_dir, f"splits_classic_{kind}.json")


def _import_h5py(mat_path: str):
    try:
        import h5py
    except ImportError as e:
        raise ImportError(
            f"CUHK03: reading '{mat_path}' (MATLAB v7.3 / HDF5) needs h5py, which is not installed: "
            "pip install h5py (or pip install fastreid[cuhk03])"
        ) from e
    return h5py


def _refs(mat, name: str) -> np.ndarray:
    # MATLAB's 5×1 / 1×20 cells appear as (1, 5) / (1, 20) in h5py; flattening accepts either orientation.
    return mat[name][()].ravel()


def _read_testsets(mat, mat_path: str) -> List[Set[Tuple[int, int]]]:
    testsets = []
    for ref in _refs(mat, "testsets"):
        pairs = mat[ref][()]
        if pairs.ndim != 2 or pairs.shape[0] != 2:
            raise ValueError(f"CUHK03: a test set in '{mat_path}' has shape {pairs.shape}, expected (2, n) in h5py")
        testsets.append({(int(c), int(p)) for c, p in pairs.T})
    return testsets


def _read_cells(mat, kind: str, mat_path: str) -> _Cells:
    """Non-empty image cells of every id, looked up by shape only (no pixels are read)."""
    cells = []
    for campair, ref in enumerate(_refs(mat, kind), start=1):
        grid = mat[ref][()]
        if grid.ndim != 2 or grid.shape[0] != _SLOTS:
            raise ValueError(f"CUHK03: camera pair {campair} of '{kind}' in '{mat_path}' has shape {grid.shape}, "
                             f"expected ({_SLOTS}, n_pids) in h5py")
        for pid in range(1, grid.shape[1] + 1):
            slots = [(slot, grid[slot, pid - 1]) for slot in range(_SLOTS) if _is_image(mat[grid[slot, pid - 1]])]
            if not slots:
                logger.warning("CUHK03: %s id %d of camera pair %d has no image; left out", kind, pid, campair)
            cells.append((campair, pid, slots))
    return cells


def _id_images(cells: _Cells, image_dir: str) -> List[IdImages]:
    return [(campair, pid, [(os.path.join(image_dir, image_name(campair, pid, slot)), slot // _SLOTS_PER_VIEW)
                            for slot, _ in slots])
            for campair, pid, slots in cells if slots]


def _is_image(dataset) -> bool:
    shape = dataset.shape
    return shape is not None and len(shape) == 3 and min(shape) > 0


def _extract_images(mat, cells: _Cells, image_dir: str) -> None:
    tmp_dir = _temp_sibling(image_dir)
    os.makedirs(tmp_dir)
    logger.info("CUHK03: extracting images into %s ...", image_dir)
    try:
        total = 0
        for campair, group in itertools.groupby(cells, key=lambda cell: cell[0]):
            count = 0
            for _, pid, slots in group:
                for slot, ref in slots:
                    pixels = np.ascontiguousarray(mat[ref][()].T)  # (3, W, H) in h5py -> (H, W, 3)
                    Image.fromarray(pixels).save(os.path.join(tmp_dir, image_name(campair, pid, slot)))
                count += len(slots)
            logger.info("CUHK03: camera pair %d: %d images", campair, count)
            total += count
        try:
            os.rename(tmp_dir, image_dir)
        except OSError:
            if not os.path.isdir(image_dir):
                raise
            shutil.rmtree(tmp_dir)  # a concurrent call finished first; its folder has the same content
        logger.info("CUHK03: extracted %d images into %s", total, image_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise


def _temp_sibling(path: str) -> str:
    """A unique hidden name in ``path``'s folder (created with the usual permissions, unlike ``tempfile``)."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}")
