"""SyntheticPerson: a procedurally drawn person re-id dataset in the Market-1501 layout.

The images are generated once into ``<root>/SyntheticPerson/`` (``bounding_box_train``, ``query``,
``bounding_box_test``, names like ``0002_c1s1_000451_00.jpg``) and read back by the Market-1501 parser. A
``meta.json`` records the generation parameters; the folder is regenerated only when it is missing or the
parameters differ. Generation writes into a temporary sibling folder and renames it into place, so several
processes (DDP ranks) may call it at once.

Protocol: the first :func:`num_train_ids` ids are for training, the rest for test: half of the ids, rounded
down to a whole number of look-alike families of 4 (at least one family), so that no family spans train and
test. The default 200 ids give 100 + 100, 24 give 12 + 12, 20 give 8 + 12. Each test id gives one query per
camera in which it has at least two images; its other images form the gallery.
"""
import json
import logging
import os
import shutil
import tempfile
import uuid
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

from .build import DATASET_REGISTRY
from .market1501 import MarketLayoutDataset
from .synthetic_render import Camera, Identity, look_alike, render_person

logger = logging.getLogger(__name__)

_FORMAT_VERSION = 10
FAMILY_SIZE = 4


def _params(num_ids: int, num_cameras: int, images_per_id: int, height: int, width: int, seed: int) -> Dict:
    if num_ids < 4 or not 2 <= num_cameras <= 9 or images_per_id < 3 or min(height, width) < 8:
        raise ValueError(
            "SyntheticPerson needs NUM_IDS >= 4, 2 <= NUM_CAMERAS <= 9, IMAGES_PER_ID >= 3 and HEIGHT, WIDTH >= 8; "
            f"got {num_ids}, {num_cameras}, {images_per_id}, {height}x{width}"
        )
    return dict(num_ids=num_ids, num_cameras=num_cameras, images_per_id=images_per_id, height=height,
                width=width, seed=seed, version=_FORMAT_VERSION)


def _cameras(seed: int, num_cameras: int) -> List[Camera]:
    return [Camera.sample(np.random.default_rng([seed, 1, c])) for c in range(num_cameras)]


def synthetic_identity(seed: int, pid: int) -> Identity:
    """The appearance of identity ``pid`` (1-based) in the set generated with ``seed``: a member of the
    look-alike family ``(pid - 1) // FAMILY_SIZE`` (families of consecutive ids; train and test never share one).
    """
    family = Identity.sample(np.random.default_rng([seed, 2, (pid - 1) // FAMILY_SIZE]))
    return look_alike(family, np.random.default_rng([seed, 4, pid]))


def num_train_ids(num_ids: int) -> int:
    """Training identities of a SyntheticPerson set of ``num_ids`` identities: ``num_ids // 2`` rounded down to
    a multiple of FAMILY_SIZE (4), and at least FAMILY_SIZE; ids ``1..num_train_ids`` train, the rest test."""
    return max(FAMILY_SIZE, num_ids // 2 // FAMILY_SIZE * FAMILY_SIZE)


def _plan(params: Dict) -> List[Tuple[int, int, str]]:
    """``(pid, camera index, subset)`` for every image, in generation order."""
    rng = np.random.default_rng([params["seed"], 3])
    n, cams, per_id = params["num_ids"], params["num_cameras"], params["images_per_id"]
    num_train = num_train_ids(n)
    plan = []
    for pid in range(1, n + 1):
        k = min(int(rng.integers(2, cams + 1)), per_id - 1)
        chosen = rng.choice(cams, size=k, replace=False)
        cam_of_image = np.concatenate([chosen, rng.choice(chosen, size=per_id - k)])
        is_test = pid > num_train
        seen: Dict[int, int] = {}
        counts = {c: int((cam_of_image == c).sum()) for c in chosen}
        for c in sorted(cam_of_image.tolist()):
            seen[c] = seen.get(c, 0) + 1
            if not is_test:
                subset = "bounding_box_train"
            else:
                subset = "query" if seen[c] == 1 and counts[c] >= 2 else "bounding_box_test"
            plan.append((pid, c, subset))
    return plan


def generate(folder: str, params: Dict) -> None:
    """Write the dataset described by ``params`` (see :func:`_params`) into ``folder``."""
    cameras = _cameras(params["seed"], params["num_cameras"])
    for sub in ("bounding_box_train", "query", "bounding_box_test"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    frame = np.zeros(params["num_cameras"], dtype=np.int64)
    person, last_pid = None, None
    for index, (pid, cam, subset) in enumerate(_plan(params)):
        if pid != last_pid:
            person, last_pid = synthetic_identity(params["seed"], pid), pid
        rng = np.random.default_rng([params["seed"], 4, index])
        frame[cam] += int(rng.integers(1, 400))
        img = render_person(person, cameras[cam], params["height"], params["width"], rng)
        name = f"{pid:04d}_c{cam + 1}s{1 + index % 6}_{frame[cam]:06d}_00.jpg"
        img.save(os.path.join(folder, subset, name), quality=92)
    with open(os.path.join(folder, "meta.json"), "w") as f:
        json.dump(params, f, indent=1)


def _read_meta(folder: str):
    try:
        with open(os.path.join(folder, "meta.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def ensure_generated(folder: str, params: Dict, write: Optional[Callable[[str, Dict], None]] = None) -> bool:
    """Generate into ``folder`` unless it already holds a dataset with ``params``; True if generated here.

    ``write(tmp_folder, params)`` (default :func:`generate`; SyntheticTracklets passes its own) writes the files
    into a temporary sibling folder, renamed into place once complete.
    """
    if _read_meta(folder) == params:
        return False
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}-tmp-", dir=parent)
    try:
        logger.info("Generating %s %s", folder, params)
        (write or generate)(tmp, params)
        if _read_meta(folder) == params:  # another process finished first
            return False
        if os.path.exists(folder):
            stale = f"{folder}.stale-{uuid.uuid4().hex}"
            try:
                os.rename(folder, stale)
                shutil.rmtree(stale, ignore_errors=True)
            except FileNotFoundError:
                pass
        try:
            os.rename(tmp, folder)
        except OSError:
            if _read_meta(folder) != params:
                raise
            return False
        return True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@DATASET_REGISTRY.register()
class SyntheticPerson(MarketLayoutDataset):
    """Procedurally drawn persons (see :mod:`fastreid.data.datasets.synthetic_render`), generated on first use.

    Args:
        root: datasets root; the images live in ``root/SyntheticPerson/``.
        num_ids: identities: the first :func:`num_train_ids` (half, rounded down to a multiple of 4, at least 4)
            train, the rest test.
        num_cameras: cameras (2-9).
        images_per_id: images of each identity, spread over 2 or more cameras.
        height, width: image size in pixels.
        seed: generation seed; the same parameters always give the same images.
    """

    dataset_dirs = ("SyntheticPerson",)
    _junk_pids = ()

    def __init__(
        self,
        root: str = "datasets",
        num_ids: int = 200,
        num_cameras: int = 6,
        images_per_id: int = 20,
        height: int = 128,
        width: int = 64,
        seed: int = 0,
        **kwargs,
    ) -> None:
        params = _params(num_ids, num_cameras, images_per_id, height, width, seed)
        ensure_generated(os.path.join(root, self.dataset_dirs[0]), params)
        self.max_pid, self.num_cameras = num_ids, num_cameras
        super().__init__(root, **kwargs)

    @classmethod
    def from_config(cls, cfg) -> dict:
        s = cfg.DATASETS.SYNTHETIC
        return dict(num_ids=s.NUM_IDS, num_cameras=s.NUM_CAMERAS, images_per_id=s.IMAGES_PER_ID,
                    height=s.HEIGHT, width=s.WIDTH, seed=s.SEED)


def make_contact_sheet(
    path: str, num_ids: int = 8, num_cameras: int = 6, height: int = 128, width: int = 64, seed: int = 0
) -> str:
    """Save a PNG grid of synthetic samples: one row per identity, one column per camera.

    Returns:
        ``path``.
    """
    cameras = _cameras(seed, num_cameras)
    gap = 4
    sheet = Image.new("RGB", (num_cameras * (width + gap) + gap, num_ids * (height + gap) + gap), (255, 255, 255))
    for row in range(num_ids):
        person = synthetic_identity(seed, row + 1)
        for col, cam in enumerate(cameras):
            img = render_person(person, cam, height, width, np.random.default_rng([seed, 5, row, col]))
            sheet.paste(img, (gap + col * (width + gap), gap + row * (height + gap)))
    sheet.save(path)
    return path
