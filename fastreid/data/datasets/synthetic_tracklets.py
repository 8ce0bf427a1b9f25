"""SyntheticTracklets: the SyntheticPerson identities filmed as short tracklets, a video re-id set built in.

The frames are generated once into ``<root>/SyntheticTracklets/`` in the DukeMTMC-VideoReID layout
(``train|query|gallery/<pid>/<tracklet>/<pid>_C<cam>_F<frame>_X<tracklet>.jpg``) and read back by the
:class:`~fastreid.data.datasets.DukeMTMCVidReID` parser. A ``meta.json`` records the generation parameters;
the folder is regenerated only when it is missing or the parameters differ, atomically (a temporary sibling
folder renamed into place), so several processes may call it at once.

Identities and cameras are SyntheticPerson's (same seeds, look-alike families of
:data:`~fastreid.data.datasets.synthetic.FAMILY_SIZE`, same train/test split by
:func:`~fastreid.data.datasets.synthetic.num_train_ids`). Each identity is seen by 2 or more cameras, with
``tracklets_per_camera`` tracklets in each. A tracklet's frames share one draw of the per-image jitter of
:func:`~fastreid.data.datasets.synthetic_render.render_person` (background, viewpoint, clothing colour noise,
occluder) while its continuous parts (position, scale, arm swing and stride, brightness, blur) drift
smoothly from frame to frame, and the sensor noise is fresh in every frame. With ``failure_rate`` > 0 some
frames show what an automatic tracker gets wrong (MARS's tracklets are detected and tracked, not drawn by hand):
a misplaced box or a switch to another person.

Query / gallery protocol: every tracklet of a training identity is in ``train``. For a test identity, the
first tracklet of each of its cameras is a query and the rest form the gallery, except that with one tracklet
per camera the identity's last camera keeps its tracklet in the gallery. Every query thus has a gallery
tracklet of its identity from another camera.
"""
import json
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

from .build import DATASET_REGISTRY
from .duke_video import DukeMTMCVidReID
from .synthetic import FAMILY_SIZE, ensure_generated, num_train_ids, synthetic_identity
from .synthetic_render import Camera, Identity, render_person

_FORMAT_VERSION = 1
DRIFT = 0.2
"""Amplitude of a tracklet's frame-to-frame drift, as a fraction of each jitter parameter's range."""
DRIFT_STEP = 0.4
"""Phase advance of the drift per frame, in radians."""


def tracklet_params(num_ids: int, num_cameras: int, tracklets_per_camera: int, frames: int, height: int,
                    width: int, seed: int, failure_rate: float = 0.0) -> Dict:
    """The generation parameters (written to ``meta.json``), checked.

    Raises:
        ValueError: naming the out-of-range parameter.
    """
    valid = num_ids >= 2 * FAMILY_SIZE and 2 <= num_cameras <= 9 and min(tracklets_per_camera, frames) >= 1
    if not valid or min(height, width) < 8 or not 0.0 <= failure_rate <= 1.0:
        raise ValueError(
            f"SyntheticTracklets needs NUM_IDS >= {2 * FAMILY_SIZE}, 2 <= NUM_CAMERAS <= 9, TRACKLETS_PER_CAMERA >= 1, "
            f"FRAMES >= 1, HEIGHT, WIDTH >= 8 and 0 <= FAILURE_RATE <= 1 (DATASETS.SYNTHETIC_TRACKLETS); got {num_ids}, "
            f"{num_cameras}, {tracklets_per_camera}, {frames}, {height}x{width}, {failure_rate}")
    params = dict(num_ids=num_ids, num_cameras=num_cameras, tracklets_per_camera=tracklets_per_camera, frames=frames,
                  height=height, width=width, seed=seed, version=_FORMAT_VERSION)
    if failure_rate:  # absent at 0, so the sets generated before the parameter existed stay valid
        params["failure_rate"] = failure_rate
    return params


def shifted(img: Image.Image, dx: int, dy: int) -> Image.Image:
    """``img`` moved by (dx, dy) pixels, the uncovered border filled with its edge pixels (a misplaced box)."""
    a = np.asarray(img)
    h, w = a.shape[:2]
    padded = np.pad(a, ((abs(dy), abs(dy)), (abs(dx), abs(dx)), (0, 0)), mode="edge")
    top, left = abs(dy) - dy, abs(dx) - dx
    return Image.fromarray(padded[top:top + h, left:left + w])


def render_frame(person: Identity, pid: int, cam: Camera, h: int, w: int, rng: "DriftingGenerator",
                 failure: Optional[np.random.Generator], num_ids: int, seed: int) -> Image.Image:
    """One frame of a tracklet; with ``failure`` (the tracker failed on this frame) either the box is misplaced
    (the person shifted a quarter to half the width sideways, partly out of the crop) or the tracker switched to
    another person walking past (a random identity drawn with the same scene jitter)."""
    if failure is None:
        return render_person(person, cam, h, w, rng)
    if failure.random() < 0.5:
        img = render_person(person, cam, h, w, rng)
        dx = int(failure.choice([-1, 1]) * failure.uniform(0.25, 0.45) * w)
        dy = int(failure.choice([-1, 1]) * failure.uniform(0.1, 0.3) * h)
        return shifted(img, dx, dy)
    other = int(failure.integers(1, num_ids))
    return render_person(synthetic_identity(seed, other + (other >= pid)), cam, h, w, rng)


class DriftingGenerator:
    """Stands in for the ``numpy.random.Generator`` that ``render_person`` draws one crop's jitter from, so
    that the frames of a tracklet are consecutive views of one scene.

    Every frame replays the same tracklet stream (``tracklet_seed``): discrete draws (viewpoint, facing,
    occlusion) and vector draws (colours) repeat exactly, scalar ``uniform`` draws (position, scale, pose,
    brightness, blur) move along a sinusoid of amplitude :data:`DRIFT` of their range, and image-shaped
    ``normal`` draws (sensor noise) come fresh from ``frame_seed``.

    Args:
        tracklet_seed: seed of the stream shared by the tracklet's frames.
        frame: frame index in the tracklet.
        frame_seed: seed of this frame's own noise.
    """

    def __init__(self, tracklet_seed, frame: int, frame_seed) -> None:
        self._stream = np.random.default_rng(tracklet_seed)
        self._noise = np.random.default_rng(frame_seed)
        self._frame = frame

    def uniform(self, low: float = 0.0, high: float = 1.0, size=None):
        value = self._stream.uniform(low, high, size)
        phase = self._stream.uniform(0.0, 2 * np.pi)
        if size is not None:
            return value
        offset = DRIFT * (high - low) * np.sin(phase + DRIFT_STEP * self._frame)
        return float(np.clip(value + offset, min(low, high), max(low, high)))

    def normal(self, loc: float = 0.0, scale: float = 1.0, size=None):
        if size is not None and np.ndim(size) > 0 and len(size) >= 2:
            return self._noise.normal(loc, scale, size)
        return self._stream.normal(loc, scale, size)

    def choice(self, *args, **kwargs):
        return self._stream.choice(*args, **kwargs)

    def random(self, *args, **kwargs):
        return self._stream.random(*args, **kwargs)

    def integers(self, *args, **kwargs):
        return self._stream.integers(*args, **kwargs)


def tracklet_plan(params: Dict) -> List[Tuple[int, int, str]]:
    """``(pid, camera index, subset)`` of every tracklet in generation order (subset: train, query, gallery)."""
    rng = np.random.default_rng([params["seed"], 6])
    cams, per_cam = params["num_cameras"], params["tracklets_per_camera"]
    num_train = num_train_ids(params["num_ids"])
    plan = []
    for pid in range(1, params["num_ids"] + 1):
        chosen = sorted(rng.choice(cams, size=int(rng.integers(2, cams + 1)), replace=False).tolist())
        for cam in chosen:
            for t in range(per_cam):
                if pid <= num_train:
                    subset = "train"
                elif t == 0 and (per_cam > 1 or cam != chosen[-1]):
                    subset = "query"
                else:
                    subset = "gallery"
                plan.append((pid, cam, subset))
    return plan


def generate_tracklets(folder: str, params: Dict) -> None:
    """Write the tracklets described by ``params`` (see :func:`tracklet_params`) into ``folder``."""
    seed, h, w = params["seed"], params["height"], params["width"]
    cameras = [Camera.sample(np.random.default_rng([seed, 1, c])) for c in range(params["num_cameras"])]
    clock = np.zeros(params["num_cameras"], dtype=np.int64)
    person, last_pid, number = None, None, 0
    for index, (pid, cam, subset) in enumerate(tracklet_plan(params)):
        if pid != last_pid:
            person, last_pid, number = synthetic_identity(seed, pid), pid, 0
        number += 1
        out = os.path.join(folder, subset, f"{pid:04d}", f"{number:04d}")
        os.makedirs(out)
        clock[cam] += int(np.random.default_rng([seed, 7, index]).integers(50, 500))
        for frame in range(params["frames"]):
            rng = DriftingGenerator([seed, 8, index], frame, [seed, 9, index, frame])
            failure = np.random.default_rng([seed, 10, index, frame])
            failed = failure if failure.random() < params.get("failure_rate", 0.0) else None
            img = render_frame(person, pid, cameras[cam], h, w, rng, failed, params["num_ids"], seed)
            img.save(os.path.join(out, f"{pid:04d}_C{cam + 1}_F{clock[cam] + frame:06d}_X{index:05d}.jpg"), quality=92)
        clock[cam] += params["frames"]
    with open(os.path.join(folder, "meta.json"), "w") as f:
        json.dump(params, f, indent=1)


@DATASET_REGISTRY.register()
class SyntheticTracklets(DukeMTMCVidReID):
    """Procedurally drawn person tracklets, generated on first use (see the module docstring for the protocol).

    Args:
        root: datasets root; the frames live in ``root/SyntheticTracklets/``.
        num_ids: identities: the first :func:`~fastreid.data.datasets.synthetic.num_train_ids` (half, rounded
            down to a multiple of 4) train, the rest test; at least 8.
        num_cameras: cameras (2-9).
        tracklets_per_camera: tracklets of each identity in each camera that sees it.
        frames: frames per tracklet.
        height, width: frame size in pixels.
        seed: generation seed; the same parameters always give the same frames.
        failure_rate: fraction of frames on which the "tracker" failed, as in MARS's detected-and-tracked
            tracklets: half of them show the person in a misplaced box, half another person (an identity switch).
        min_seq_len: as :class:`~fastreid.data.datasets.DukeMTMCVidReID`.
    """

    dataset_dirs = ("SyntheticTracklets",)

    def __init__(
        self,
        root: str = "datasets",
        num_ids: int = 100,
        num_cameras: int = 4,
        tracklets_per_camera: int = 2,
        frames: int = 12,
        height: int = 128,
        width: int = 64,
        seed: int = 0,
        failure_rate: float = 0.0,
        **kwargs,
    ) -> None:
        params = tracklet_params(num_ids, num_cameras, tracklets_per_camera, frames, height, width, seed, failure_rate)
        ensure_generated(os.path.join(root, self.dataset_dirs[0]), params, generate_tracklets)
        self.num_cameras = num_cameras
        super().__init__(root, **kwargs)

    @classmethod
    def from_config(cls, cfg) -> dict:
        s = cfg.DATASETS.SYNTHETIC_TRACKLETS
        return dict(num_ids=s.NUM_IDS, num_cameras=s.NUM_CAMERAS, tracklets_per_camera=s.TRACKLETS_PER_CAMERA,
                    frames=s.FRAMES, height=s.HEIGHT, width=s.WIDTH, seed=s.SEED, failure_rate=s.FAILURE_RATE,
                    min_seq_len=cfg.DATASETS.MIN_SEQ_LEN)
